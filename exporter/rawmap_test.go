package exporter

import (
	"errors"
	"strings"
	"testing"
)

// TestWindow: ranges in ascending order of their start, overlapping the one
// before or not, are served from one sequential read; going back is refused.
func TestWindow(t *testing.T) {
	file := "0123456789abcdefghij"
	for _, c := range []struct {
		name   string
		ranges [][2]int64
		want   []string
		err    string
	}{
		{"disjoint", [][2]int64{{0, 3}, {5, 8}, {15, 20}}, []string{"012", "567", "fghij"}, ""},
		{"overlapping", [][2]int64{{2, 9}, {4, 12}, {4, 6}, {11, 13}}, []string{"2345678", "456789ab", "45", "bc"}, ""},
		{"same twice", [][2]int64{{3, 5}, {3, 5}}, []string{"34", "34"}, ""},
		{"back", [][2]int64{{5, 8}, {4, 6}}, []string{"567"}, "goes back from 5 to 4"},
		{"past the end", [][2]int64{{18, 22}}, nil, "reading the disk file at 18"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &window{src: strings.NewReader(file)}
			var got []string
			var err error
			for _, r := range c.ranges {
				var b []byte
				if b, err = w.span(r[0], r[1]); err != nil {
					break
				}
				got = append(got, string(b))
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("got %q, want %q", got, c.want)
			}
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("error %v, want %q", err, c.err)
			}
		})
	}
}

// TestConvertDecodes: a compressed region is inflated to its size and
// written unless all zeros; a decoder's failure is named with the offset.
func TestConvertDecodes(t *testing.T) {
	m := &diskMap{virtualSize: 8}
	fill := func(dst, src []byte) error {
		for i := range dst {
			dst[i] = src[0]
		}
		return nil
	}
	m.addData(0, 1, 0, 4, fill)
	m.addData(1, 1, 4, 4, fill)
	out := &memWriter{}
	if err := m.convert(strings.NewReader("x\x00"), 2, out); err != nil {
		t.Fatal(err)
	}
	if string(out.b) != "xxxx" {
		t.Errorf("wrote %q", out.b)
	}
	m.regions[1].decode = func(dst, src []byte) error { return errors.New("bad stream") }
	err := m.convert(strings.NewReader("x\x00"), 2, &memWriter{})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "compressed data at 1: bad stream") {
		t.Errorf("error %v", err)
	}
}

type memWriter struct{ b []byte }

func (w *memWriter) WriteAt(p []byte, off int64) (int, error) {
	if n := off + int64(len(p)); n > int64(len(w.b)) {
		w.b = append(w.b, make([]byte, n-int64(len(w.b)))...)
	}
	return copy(w.b[off:], p), nil
}
