package diskformat

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

const (
	decodeBuf    = 256 << 10
	xzTailKeep   = 1 << 20   // compressed bytes kept for the xz index
	xzMaxDict    = 64 << 20  // xz -9; larger dictionaries would be allocated as declared
	zstdMaxWndow = 128 << 20 // zstd --long; larger windows are refused, not allocated
)

// pipeline decompresses in its own goroutine and feeds the engine there.
// For xz, decompression stops once the inner format is raw or iso: the
// length then comes from the xz index in the kept tail (see xzindex.go).
type pipeline struct {
	comp    Compression
	q       *queue
	eng     *engine
	done    chan struct{}
	res     error // the goroutine's result, read after done or gone
	stopped bool  // xz only: the decoder stopped on purpose
	drop    bool  // writer side: the decoder reads no more
	xzHead  []byte
	xzTail  *ring
}

func newPipeline(c Compression) *pipeline {
	p := &pipeline{comp: c, q: newQueue(), eng: newEngine(), done: make(chan struct{})}
	if c == XZ {
		p.xzTail = newRing(xzTailKeep)
	}
	go p.run()
	return p
}

func (p *pipeline) write(b []byte) error {
	if p.xzTail != nil {
		if len(p.xzHead) < xzStreamHeader {
			p.xzHead = append(p.xzHead, b[:min(len(b), xzStreamHeader-len(p.xzHead))]...)
		}
		p.xzTail.write(b)
	}
	if p.drop {
		return nil
	}
	err := p.q.put(b)
	select {
	case <-p.q.gone:
		err = errConsumerGone
	default:
	}
	if err == errConsumerGone {
		if p.res != nil {
			return p.res
		}
		p.drop = true
	}
	return nil
}

func (p *pipeline) run() {
	defer close(p.done)
	defer p.q.stop()
	r, closeFn, err := p.decoder()
	if err != nil {
		p.res = err
		return
	}
	defer closeFn()
	buf := make([]byte, decodeBuf)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if e := p.eng.feed(buf[:n]); e != nil {
				p.res = e
				return
			}
			if p.comp == XZ && p.eng.detected() && !p.eng.parser.needsAll() {
				p.stopped = true
				return
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			p.res = decodeError(p.comp, err)
			return
		}
	}
}

func (p *pipeline) decoder() (io.Reader, func(), error) {
	switch p.comp {
	case Gzip:
		zr, err := gzip.NewReader(p.q)
		if err != nil {
			return nil, nil, decodeError(p.comp, err)
		}
		return zr, func() { _ = zr.Close() }, nil
	case Zstd:
		zr, err := zstd.NewReader(p.q, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWndow))
		if err != nil {
			return nil, nil, decodeError(p.comp, err)
		}
		return zr, zr.Close, nil
	default:
		br := bufio.NewReaderSize(p.q, 4096)
		if err := xzCheckDict(br); err != nil {
			return nil, nil, err
		}
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, nil, decodeError(p.comp, err)
		}
		return xr, func() {}, nil
	}
}

// decodeError maps a decompressor's error: a stream that ends early is
// truncated, anything else is corrupt.
func decodeError(c Compression, err error) error {
	switch {
	case errors.Is(err, ErrAborted):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the %s stream ends before its end marker", ErrTruncated, c)
	}
	return fmt.Errorf("%w: the %s stream is damaged: %v", ErrCorrupt, c, err)
}

// close ends the input, waits for the decoder and returns the result.
func (p *pipeline) close() (Format, int64, error) {
	p.q.finish()
	<-p.done
	if p.res != nil {
		return "", 0, p.res
	}
	if !p.stopped {
		return p.eng.finish(p.eng.pos, true)
	}
	total, err := xzUnpackedSize(p.xzHead, p.xzTail.bytes(), p.xzTail.total)
	if err != nil {
		return "", 0, err
	}
	if total < p.eng.pos {
		return "", 0, fmt.Errorf("%w: the xz index declares %d bytes but more were decompressed", ErrCorrupt, total)
	}
	return p.eng.finish(total, false)
}

func (p *pipeline) abort() {
	p.q.abort()
	<-p.done
}
