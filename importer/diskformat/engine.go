package diskformat

import "fmt"

const (
	// detectHead is how many leading bytes are kept for detection: it
	// covers the ISO 9660 volume descriptors (sectors 16..31), and with
	// them the system area where other headers could hide.
	detectHead = 64 << 10
	// maxHead bounds the head a parser may ask for (a qcow2 first cluster).
	maxHead = 2 << 20
	// maxOffset bounds every offset and size taken from a header, so that
	// sums of them never overflow an int64.
	maxOffset = int64(1) << 62
	tailKeep  = 2048 // footer bytes kept at the end of the stream
)

// parser checks one detected format. start sees the head (at least the
// length asked for by headNeed, unless the stream is shorter) and may
// register captures; finish sees the final length of the stream, and tail
// its last bytes (nil when they were not decompressed).
type parser interface {
	headNeed(head []byte) int
	start(e *engine, head []byte) error
	finish(total int64, tail []byte) (virtualSize int64, err error)
	needsAll() bool // false: detection and the length suffice (raw, iso)
}

// engine inspects the inner (decompressed) stream. It is fed by a single
// goroutine: the caller's for plain input, the decoder's otherwise.
type engine struct {
	pos      int64
	head     []byte
	headWant int
	format   Format
	parser   parser
	started  bool
	capture  capturer
	tail     *ring
	err      error
}

func newEngine() *engine {
	return &engine{headWant: detectHead, tail: newRing(tailKeep)}
}

// detected reports whether the format is known and its parser started.
func (e *engine) detected() bool { return e.started }

func (e *engine) feed(p []byte) error {
	if e.err != nil {
		return e.err
	}
	if !e.started {
		take := min(len(p), e.headWant-len(e.head))
		e.head = append(e.head, p[:take]...)
		e.tail.write(p[:take])
		e.pos += int64(take)
		p = p[take:]
		if len(e.head) < e.headWant {
			return nil
		}
		if e.err = e.begin(false); e.err != nil {
			return e.err
		}
		if !e.started { // the parser wants a longer head
			return e.feed(p)
		}
	}
	if len(p) == 0 {
		return nil
	}
	end := e.pos + int64(len(p))
	if !e.capture.idle(end) {
		if e.err = e.capture.feed(e.pos, p); e.err != nil {
			return e.err
		}
	} else {
		e.capture.chunkStart = end
	}
	e.tail.write(p)
	e.pos = end
	return nil
}

// begin detects the format on the head, then grows the head if the parser
// asks for it, then starts the parser.
func (e *engine) begin(final bool) error {
	if e.parser == nil {
		f, p, err := detect(e.head)
		if err != nil {
			return err
		}
		e.format, e.parser = f, p
		if want := min(p.headNeed(e.head), maxHead); want > len(e.head) && !final {
			e.headWant = want
			return nil
		}
	}
	e.started = true
	e.capture.head = e.head
	e.capture.chunkStart = e.pos
	return e.parser.start(e, e.head)
}

// finish ends the stream; total is its length (normally e.pos; for xz
// input detected as raw or iso, the length from the xz index, and then
// tailKnown is false).
func (e *engine) finish(total int64, tailKnown bool) (Format, int64, error) {
	if e.err != nil {
		return "", 0, e.err
	}
	if total == 0 {
		return "", 0, fmt.Errorf("%w: the input has no bytes", ErrEmpty)
	}
	if !e.started {
		if e.err = e.begin(true); e.err != nil {
			return "", 0, e.err
		}
	}
	var tail []byte
	if tailKnown {
		tail = e.tail.bytes()
	}
	size, err := e.parser.finish(total, tail)
	if err != nil {
		e.err = err
		return "", 0, err
	}
	return e.format, size, nil
}
