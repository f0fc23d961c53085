package diskformat

import (
	"bytes"
	"fmt"
	"io"
)

// compressMagicLen is how many leading bytes decide the compression.
const compressMagicLen = 6

// Inspector is an io.Writer fed the source's bytes in order, exactly once;
// Close then reports the Info. Write returns a refusal as soon as the
// bytes show it, so the caller can abort the transfer. An Inspector is not
// safe for concurrent use.
type Inspector struct {
	prelude []byte // the first bytes, until the compression is known
	comp    Compression
	eng     *engine   // plain input: fed directly
	pipe    *pipeline // compressed input: fed by a decoder goroutine
	n       int64
	err     error
	done    bool
}

// NewInspector returns an Inspector waiting for the first byte.
func NewInspector() *Inspector { return &Inspector{} }

// Inspect copies r into an Inspector and returns its Info.
func Inspect(r io.Reader) (Info, error) {
	in := NewInspector()
	if _, err := io.Copy(in, r); err != nil {
		in.Abort()
		return Info{}, err
	}
	return in.Close()
}

// Write inspects p; it does not retain p.
func (in *Inspector) Write(p []byte) (int, error) {
	if in.err != nil {
		return 0, in.err
	}
	if in.done {
		return 0, fmt.Errorf("%w: Write after Close", ErrAborted)
	}
	n := len(p)
	in.n += int64(n)
	if in.eng == nil && in.pipe == nil {
		take := min(len(p), compressMagicLen-len(in.prelude))
		in.prelude = append(in.prelude, p[:take]...)
		if len(in.prelude) < compressMagicLen {
			return n, nil
		}
		in.begin()
		if in.err = in.feed(in.prelude); in.err != nil {
			return 0, in.err
		}
		p = p[take:]
	}
	if in.err = in.feed(p); in.err != nil {
		return 0, in.err
	}
	return n, nil
}

func (in *Inspector) feed(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if in.pipe != nil {
		return in.pipe.write(p)
	}
	return in.eng.feed(p)
}

// begin chooses plain or decompressing inspection from the prelude.
func (in *Inspector) begin() {
	in.comp = compressionOf(in.prelude)
	if in.comp == None {
		in.eng = newEngine()
		return
	}
	in.pipe = newPipeline(in.comp)
}

func compressionOf(b []byte) Compression {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(b, []byte("\xfd7zXZ\x00")):
		return XZ
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	}
	return None
}

// Close ends the input and returns what was found, or why the image is
// refused. Call it once.
func (in *Inspector) Close() (Info, error) {
	if in.done {
		return Info{}, fmt.Errorf("%w: Close called twice", ErrAborted)
	}
	in.done = true
	if in.err != nil {
		in.Abort()
		return Info{}, in.err
	}
	if in.n == 0 {
		return Info{}, fmt.Errorf("%w: the input has no bytes", ErrEmpty)
	}
	if in.eng == nil && in.pipe == nil {
		in.begin()
		if err := in.feed(in.prelude); err != nil {
			in.Abort()
			return Info{}, err
		}
	}
	var (
		f    Format
		size int64
		err  error
	)
	if in.pipe != nil {
		f, size, err = in.pipe.close()
	} else {
		f, size, err = in.eng.finish(in.eng.pos, true)
	}
	if err != nil {
		in.err = err
		return Info{}, err
	}
	return Info{Format: f, Compression: in.comp, VirtualSize: size, SourceSize: in.n, CDROM: f == ISO}, nil
}

// Unchecked returns how many tables (qcow2 L1/L2/refcount tables, vmdk
// grain directory/tables, vdi block map) could not be checked because they
// lay before the point of the stream where their offset became known, or
// beyond the memory bounds. Valid after Close; informational only.
func (in *Inspector) Unchecked() int {
	switch {
	case in.eng != nil:
		return in.eng.capture.missed
	case in.pipe != nil && in.done:
		return in.pipe.eng.capture.missed
	}
	return 0
}

// Abort releases the decoder goroutine and buffers; it is idempotent, and
// Close need not follow.
func (in *Inspector) Abort() {
	if in.err == nil {
		in.err = fmt.Errorf("%w: the inspection was abandoned", ErrAborted)
	}
	if in.pipe != nil {
		in.pipe.abort()
	}
}
