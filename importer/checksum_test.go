package importer

import (
	"errors"
	"strings"
	"testing"
)

func TestParseChecksums(t *testing.T) {
	sha256Empty := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	cases := []struct {
		spec string
		ok   bool
	}{
		{"sha256:" + sha256Empty, true},
		{"SHA256:" + strings.ToUpper(sha256Empty), true},
		{"md5:d41d8cd98f00b204e9800998ecf8427e", true},
		{"sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709", true},
		{"sha512:" + strings.Repeat("0", 128), true},
		{"sha256:abc", false},
		{"crc32:00000000", false},
		{"no-colon", false},
		{"sha256:" + strings.Repeat("g", 64), false},
	}
	for _, c := range cases {
		t.Run(c.spec, func(t *testing.T) {
			_, err := parseChecksums([]string{c.spec})
			if c.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadChecksum)) {
				t.Fatalf("parseChecksums(%q): %v", c.spec, err)
			}
		})
	}
}

func TestVerifyChecksums(t *testing.T) {
	sums, err := parseChecksums([]string{
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"md5:d41d8cd98f00b204e9800998ecf8427e",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyChecksums(sums); err != nil { // nothing written: the empty input's sums
		t.Fatal(err)
	}
	_, _ = checksumWriter(sums).Write([]byte("x"))
	err = verifyChecksums(sums)
	if !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("after a byte: %v", err)
	}
}
