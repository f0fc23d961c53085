package diskformat

import (
	"errors"
	"io"
	"sync"
)

// The queue hands copies of the written bytes to the decoder goroutine, so
// that decompression overlaps with the caller's I/O. Write blocks only when
// queueDepth pieces are waiting: at most (queueDepth+2)*pieceSize bytes
// are held.
const (
	pieceSize  = 1 << 20
	queueDepth = 4
)

var errConsumerGone = errors.New("decoder stopped")

type queue struct {
	ch       chan []byte
	free     chan []byte
	cur      []byte        // being filled by the writer
	gone     chan struct{} // closed when the decoder stops reading
	goneOnce sync.Once
	aborted  chan struct{}
	abortOne sync.Once
	closed   bool
	rbuf     []byte // being read by the decoder
	roff     int
}

func newQueue() *queue {
	return &queue{
		ch: make(chan []byte, queueDepth), free: make(chan []byte, queueDepth+2),
		gone: make(chan struct{}), aborted: make(chan struct{}),
	}
}

// put copies p into pieces; errConsumerGone once the decoder has stopped.
func (q *queue) put(p []byte) error {
	for len(p) > 0 {
		if q.cur == nil {
			select {
			case q.cur = <-q.free:
				q.cur = q.cur[:0]
			default:
				q.cur = make([]byte, 0, pieceSize)
			}
		}
		n := copy(q.cur[len(q.cur):cap(q.cur)], p)
		q.cur = q.cur[:len(q.cur)+n]
		p = p[n:]
		if len(q.cur) == cap(q.cur) {
			if err := q.send(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (q *queue) send() error {
	select {
	case q.ch <- q.cur:
		q.cur = nil
		return nil
	case <-q.gone:
		q.cur = nil
		return errConsumerGone
	}
}

// finish sends the last piece and signals end of input.
func (q *queue) finish() {
	if q.closed {
		return
	}
	q.closed = true
	if len(q.cur) > 0 {
		if q.send() != nil {
			return
		}
	}
	close(q.ch)
}

// stop is called by the decoder when it will read no more.
func (q *queue) stop() { q.goneOnce.Do(func() { close(q.gone) }) }

func (q *queue) abort() { q.abortOne.Do(func() { close(q.aborted) }) }

// Read is the decoder's side.
func (q *queue) Read(b []byte) (int, error) {
	if q.roff == len(q.rbuf) {
		if q.rbuf != nil {
			select {
			case q.free <- q.rbuf:
			default:
			}
			q.rbuf, q.roff = nil, 0
		}
		select {
		case buf, ok := <-q.ch:
			if !ok {
				return 0, io.EOF
			}
			q.rbuf = buf
		case <-q.aborted:
			return 0, ErrAborted
		}
	}
	n := copy(b, q.rbuf[q.roff:])
	q.roff += n
	return n, nil
}
