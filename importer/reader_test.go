package importer

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestExactReader(t *testing.T) {
	cases := []struct {
		name string
		data string
		size int64
		want error
	}{
		{"exact", "abcdef", 6, nil},
		{"short", "abc", 6, ErrSizeMismatch},
		{"long", "abcdefg", 6, ErrSizeMismatch},
		{"empty", "", 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := io.ReadAll(&exactReader{r: bytes.NewReader([]byte(c.data)), size: c.size})
			if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if c.want == nil && string(got) != c.data {
				t.Fatalf("read %q", got)
			}
		})
	}
}
