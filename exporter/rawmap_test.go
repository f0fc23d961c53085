package exporter

import (
	"errors"
	"fmt"
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

// TestWriteData: all-zero 4 KiB blocks stay holes, stretches of the others
// are written in one piece, the end is cut at the virtual size.
func TestWriteData(t *testing.T) {
	block := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	for _, c := range []struct {
		name        string
		data        string
		virtualSize int64
		writes      string // off:len of each write
	}{
		{"all zero", block(0, 3*zeroBlock), 1 << 20, ""},
		{"hole between", block('a', zeroBlock) + block(0, zeroBlock) + block('b', 2*zeroBlock), 1 << 20, "100:4096 8292:8192"},
		{"partial last block", block(0, zeroBlock) + block('c', 10), 1 << 20, "4196:10"},
		{"cut at the virtual size", block('d', 2*zeroBlock), 100 + zeroBlock + 5, "100:4101"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &recordWriter{}
			if err := writeData(w, []byte(c.data), 100, c.virtualSize); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(w.writes, " "); got != c.writes {
				t.Errorf("writes %q, want %q", got, c.writes)
			}
		})
	}
}

type recordWriter struct{ writes []string }

func (w *recordWriter) WriteAt(p []byte, off int64) (int, error) {
	w.writes = append(w.writes, fmt.Sprintf("%d:%d", off, len(p)))
	return len(p), nil
}

// TestAddDataMerges: data stored as is in order in the file and the guest
// becomes one region up to maxRun; compressed data, gaps and a jump in the
// guest start a new one.
func TestAddDataMerges(t *testing.T) {
	m := &diskMap{}
	const c = 64 << 10
	m.addData(0, c, 0, c, nil)
	m.addData(c, c, c, c, nil)             // merged
	m.addData(3*c, c, 2*c, c, nil)         // gap in the file
	m.addData(4*c, c, 5*c, c, nil)         // jump in the guest
	m.addData(5*c, 10, 6*c, c, bad)        // compressed
	m.addData(5*c+10, c, 7*c, c, nil)      // after compressed data
	for i := int64(1); i < maxRun/c; i++ { // up to maxRun, then a new region
		m.addData(5*c+10+i*c, c, 7*c+i*c, c, nil)
	}
	m.addData(5*c+10+maxRun, c, 7*c+maxRun, c, nil)
	var got []string
	for _, r := range m.regions {
		got = append(got, fmt.Sprintf("%d+%d@%d", r.off, r.n, r.guest))
	}
	want := fmt.Sprintf("0+%d@0 %d+%d@%d %d+%d@%d %d+10@%d %d+%d@%d %d+%d@%d",
		2*c, 3*c, c, 2*c, 4*c, c, 5*c, 5*c, 6*c, 5*c+10, maxRun, 7*c, 5*c+10+maxRun, c, 7*c+maxRun)
	if strings.Join(got, " ") != want {
		t.Errorf("regions\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
}

func bad(dst, src []byte) error { return errors.New("bad") }
