package diskformat

import "container/heap"

// Capture: parsers learn offsets of structures they want to check (a qcow2
// L1 table, an L2 table, a vmdk grain table) while the stream runs. They
// register a region; its bytes are copied when the stream passes them and
// handed to the region's callback once complete. A region that starts
// before the current chunk can no longer be captured (the bytes are gone):
// it is counted in missed and simply not checked (except that bytes of the
// retained head are still at hand). The same happens when the regions
// being filled would exceed captureBudget bytes or maxActive regions, or
// more than maxRegions regions were registered, so memory and the copying
// per stream byte stay bounded whatever the image declares.
const (
	captureBudget = 8 << 20 // bytes held by regions being filled
	maxActive     = 64      // regions being filled at once
	maxRegions    = 1 << 16 // regions waiting at once
	maxRegionsAll = 1 << 20 // regions over the whole stream (bounds CPU)
)

type region struct {
	off, end int64
	fn       func([]byte) error
}

type activeRegion struct {
	region
	next int64 // next absolute offset to fill
	buf  []byte
}

type regionHeap []region

func (h regionHeap) Len() int           { return len(h) }
func (h regionHeap) Less(i, j int) bool { return h[i].off < h[j].off }
func (h regionHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *regionHeap) Push(x any)        { *h = append(*h, x.(region)) }
func (h *regionHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}

type capturer struct {
	pending     regionHeap
	active      []*activeRegion
	activeBytes int64
	added       int
	missed      int   // regions not checked (passed, over budget, too many)
	chunkStart  int64 // bytes before this offset are gone
	head        []byte
}

// add registers [off, off+n). Regions inside the retained head are served
// at once; regions that start before the current chunk are missed.
func (c *capturer) add(off, n int64, fn func([]byte) error) error {
	if n <= 0 || off < 0 || off > maxOffset-n {
		return nil
	}
	end := off + n
	if end <= int64(len(c.head)) {
		return fn(c.head[off:end])
	}
	if len(c.pending) >= maxRegions || c.added >= maxRegionsAll {
		c.missed++
		return nil
	}
	if off < c.chunkStart {
		return c.fromHead(off, end, fn)
	}
	c.added++
	heap.Push(&c.pending, region{off: off, end: end, fn: fn})
	return nil
}

// fromHead starts a region whose first bytes are gone from the stream but
// still in the head (the region straddles the end of the head).
func (c *capturer) fromHead(off, end int64, fn func([]byte) error) error {
	if c.chunkStart > int64(len(c.head)) || !c.admit(end-off) {
		c.missed++
		return nil
	}
	a := &activeRegion{region: region{off: off, end: end, fn: fn}, next: c.chunkStart, buf: make([]byte, end-off)}
	copy(a.buf, c.head[off:c.chunkStart])
	c.active = append(c.active, a)
	return nil
}

// admit reserves n bytes for a region to be filled, if the limits allow.
func (c *capturer) admit(n int64) bool {
	if c.activeBytes+n > captureBudget || len(c.active) >= maxActive {
		return false
	}
	c.activeBytes += n
	return true
}

// idle reports whether feed has nothing to do for a chunk ending at end:
// the fast path for the common case.
func (c *capturer) idle(end int64) bool {
	return len(c.active) == 0 && (len(c.pending) == 0 || c.pending[0].off >= end)
}

// feed offers chunk p, which starts at stream offset pos.
func (c *capturer) feed(pos int64, p []byte) error {
	c.chunkStart = pos
	end := pos + int64(len(p))
	defer func() { c.chunkStart = end }()
	for !c.idle(end) {
		c.activate(end)
		progressed, err := c.fill(pos, p)
		if err != nil {
			return err
		}
		if !progressed && (len(c.pending) == 0 || c.pending[0].off >= end) {
			return nil // active regions continue in later chunks
		}
	}
	return nil
}

func (c *capturer) activate(end int64) {
	for len(c.pending) > 0 && c.pending[0].off < end {
		r := heap.Pop(&c.pending).(region)
		n := r.end - r.off
		if !c.admit(n) {
			c.missed++
			continue
		}
		c.active = append(c.active, &activeRegion{region: r, next: r.off, buf: make([]byte, n)})
	}
}

// fill copies the overlap of p into every active region and runs the
// callbacks of completed ones; callbacks may add regions later in p.
func (c *capturer) fill(pos int64, p []byte) (bool, error) {
	end := pos + int64(len(p))
	var done []*activeRegion
	kept := c.active[:0]
	for _, a := range c.active {
		if a.next < end {
			to := min(a.end, end)
			copy(a.buf[a.next-a.off:], p[a.next-pos:to-pos])
			a.next = to
		}
		if a.next == a.end {
			done = append(done, a)
			continue
		}
		kept = append(kept, a)
	}
	clear(c.active[len(kept):])
	c.active = kept
	for _, a := range done {
		c.activeBytes -= a.end - a.off
		if err := a.fn(a.buf); err != nil {
			return true, err
		}
	}
	return len(done) > 0, nil
}
