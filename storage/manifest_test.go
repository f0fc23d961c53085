package storage

import (
	"strings"
	"testing"
)

// TestParseManifest: manifests and indexes with and without a media type,
// a subject, and what is refused.
func TestParseManifest(t *testing.T) {
	const a = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	const b = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	image := `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + a + `","size":2},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + b + `","size":7}]`
	for _, c := range []struct {
		name, payload string
		refs          string // digest letter, m for a child manifest
		subject       bool
		err           string
	}{
		{"image without media type", image + `}`, "a b", false, ""},
		{"image with subject", image + `,"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + a + `","size":1}}`, "a b", true, ""},
		{"index without media type", `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + a + `","size":3}]}`, "am", false, ""},
		{"schema 1", `{"schemaVersion":1}`, "", false, "schema version 1"},
		{"bad reference", `{"schemaVersion":2,"manifests":[{"digest":"sha256:zz","size":3}]}`, "", false, "reference"},
		{"not json", `{`, "", false, "unexpected end"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(c.payload))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range m.Refs {
				s := string(r.Digest)[7:8]
				if r.Manifest {
					s += "m"
				}
				got = append(got, s)
			}
			if strings.Join(got, " ") != c.refs || (m.Subject != "") != c.subject {
				t.Errorf("refs %v subject %q, want %q subject %t", got, m.Subject, c.refs, c.subject)
			}
		})
	}
}
