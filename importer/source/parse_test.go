package source

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec     string
		wantType string
		wantErr  error
		wantStr  string
	}{
		{spec: "disk.img", wantType: "*source.fileSource", wantStr: "disk.img"},
		{spec: "/tmp/a:b.img", wantType: "*source.fileSource"},
		{spec: "file:///tmp/x.img", wantType: "*source.fileSource", wantStr: "/tmp/x.img"},
		{spec: "http://example.com/a.img", wantType: "*source.httpSource", wantStr: "http://example.com/a.img"},
		{spec: "HTTPS://user:secret@example.com/a.img", wantType: "*source.httpSource", wantStr: "https://example.com/a.img"},
		{spec: "docker://registry.example.com/cvi/ubuntu:22.04", wantType: "*source.dockerSource"},
		{spec: "docker://127.0.0.1:5000/a@sha256:" + strings.Repeat("ab", 32), wantType: "*source.dockerSource"},
		{spec: "dvcr://cvi/ubuntu", wantErr: ErrDVCRSource},
		{spec: "dvcr://vi/ns/name", wantErr: ErrDVCRSource},
		{spec: "ftp://user:secret@example.com/a.img", wantErr: ErrUnsupportedScheme},
		{spec: "s3://bucket/a.img", wantErr: ErrUnsupportedScheme},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			src, err := Parse(tc.spec, Options{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Parse error = %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error leaks credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := typeName(src); got != tc.wantType {
				t.Errorf("type %s, want %s", got, tc.wantType)
			}
			if tc.wantStr != "" && src.String() != tc.wantStr {
				t.Errorf("String() = %q, want %q", src.String(), tc.wantStr)
			}
			if strings.Contains(src.String(), "secret") {
				t.Errorf("String() leaks credentials: %s", src)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	for _, spec := range []string{"", "http://", "docker://UPPER/Case::x", "docker://h/r@sha256:short"} {
		t.Run(spec, func(t *testing.T) {
			if _, err := Parse(spec, Options{}); err == nil {
				t.Errorf("Parse(%q): no error", spec)
			}
		})
	}
	t.Run("bad CA bundle", func(t *testing.T) {
		if _, err := Parse("https://example.com/x", Options{CABundle: []byte("junk")}); err == nil {
			t.Error("no error for a CA bundle without certificates")
		}
	})
}

func typeName(v any) string {
	switch v.(type) {
	case *fileSource:
		return "*source.fileSource"
	case *httpSource:
		return "*source.httpSource"
	case *dockerSource:
		return "*source.dockerSource"
	case *stdinSource:
		return "*source.stdinSource"
	}
	return "?"
}
