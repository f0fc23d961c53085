package source

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFile(t *testing.T) {
	dir := t.TempDir()
	data := testData(4096)
	regular := filepath.Join(dir, "disk.qcow2.xz")
	if err := os.WriteFile(regular, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr error
		wantMsg string
	}{
		{name: "regular", path: regular},
		{name: "missing", path: filepath.Join(dir, "nope.img"), wantErr: ErrNotFound, wantMsg: "nope.img"},
		{name: "directory", path: dir, wantMsg: "is a directory"},
		{name: "device", path: os.DevNull, wantMsg: "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := Parse(tc.path, Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			st, err := src.Open(context.Background())
			if tc.wantMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("Open error = %v, want one containing %q", err, tc.wantMsg)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("Open error = %v, want errors.Is %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer st.Body.Close()
			got, err := io.ReadAll(st.Body)
			if err != nil {
				t.Fatal(err)
			}
			if st.Name != "disk.qcow2.xz" || st.Size != int64(len(data)) || sum(got) != sum(data) {
				t.Errorf("got name %q size %d sum %s", st.Name, st.Size, sum(got))
			}
		})
	}
}

func TestStdin(t *testing.T) {
	data := testData(1000)
	src, err := Parse("-", Options{Stdin: strings.NewReader(string(data))})
	if err != nil {
		t.Fatal(err)
	}
	st, err := src.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(st.Body)
	if st.Name != DefaultName || st.Size != -1 || sum(got) != sum(data) {
		t.Errorf("stdin: name %q size %d, %d bytes", st.Name, st.Size, len(got))
	}
	if _, err := Parse("-", Options{}); err == nil {
		t.Error("Parse(-) without Stdin: no error")
	}
}
