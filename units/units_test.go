package units

import "testing"

func TestFormatBytes(t *testing.T) {
	cases := map[uint64]string{
		0:           "0.0B",
		512:         "512.0B",
		1024:        "1.0KiB",
		1536:        "1.5KiB",
		1<<20 - 1:   "1.0MiB",
		38976570572: "36.3GiB",
		3 << 40:     "3.0TiB",
		5 << 50:     "5.0PiB",
		2048 << 50:  "2048.0PiB",
	}
	for n, want := range cases {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
