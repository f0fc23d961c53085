package exporter

import (
	"sync"
	"time"
)

// progressInterval spaces byte-count events.
const progressInterval = 250 * time.Millisecond

// progress reports the bytes of the disk file reached, at most every
// progressInterval, plus at each phase change and note.
type progress struct {
	mu    sync.Mutex
	fn    func(Event)
	phase string
	bytes int64
	total int64
	last  time.Time
}

func newProgress(fn func(Event)) *progress { return &progress{fn: fn} }

// begin starts a phase at bytes of total.
func (p *progress) begin(phase string, bytes, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.bytes, p.total = phase, bytes, total
	p.emitLocked("")
}

// end reports the final count of the phase.
func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.emitLocked("")
}

// Write counts bytes; it sits in a TeeReader.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bytes += int64(len(b))
	if time.Since(p.last) >= progressInterval {
		p.emitLocked("")
	}
	return len(b), nil
}

// note reports a message that interrupts the phase.
func (p *progress) note(phase, msg string) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn(Event{Phase: phase, Bytes: p.bytes, Total: p.total, Message: msg})
}

func (p *progress) emitLocked(msg string) {
	p.last = time.Now()
	if p.fn != nil && p.phase != "" {
		p.fn(Event{Phase: p.phase, Bytes: p.bytes, Total: p.total, Message: msg})
	}
}
