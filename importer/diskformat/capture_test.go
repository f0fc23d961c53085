package diskformat

import (
	"bytes"
	"testing"
)

func TestCapture(t *testing.T) {
	stream := randomBytes(11, 1<<20)
	head := stream[:1000]
	c := capturer{head: head, chunkStart: 1000}
	got := map[string][]byte{}
	keep := func(name string) func([]byte) error {
		return func(b []byte) error { got[name] = bytes.Clone(b); return nil }
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.add(10, 20, keep("in head")))
	must(c.add(900, 300, keep("straddles head")))
	must(c.add(5000, 70000, func(b []byte) error {
		got["ahead"] = bytes.Clone(b)
		// learnt while the stream runs: later in the same chunk, and behind it
		must(c.add(76000, 10, keep("same chunk")))
		must(c.add(3000, 10, keep("passed")))
		return nil
	}))
	must(c.add(200000, captureBudget+1, keep("too big")))
	for pos := 1000; pos < len(stream); pos += 4099 {
		must(c.feed(int64(pos), stream[pos:min(pos+4099, len(stream))]))
	}
	for name, r := range map[string][2]int{"in head": {10, 30}, "straddles head": {900, 1200},
		"ahead": {5000, 75000}, "same chunk": {76000, 76010}} {
		if !bytes.Equal(got[name], stream[r[0]:r[1]]) {
			t.Errorf("%s: captured %d bytes, not the stream's", name, len(got[name]))
		}
	}
	if _, ok := got["passed"]; ok || c.missed != 2 {
		t.Errorf("missed = %d, want 2 (passed, too big); got %v", c.missed, len(got))
	}
}
