// Package progress counts the bytes of a long transfer in phases and
// reports them as events: what `dvcr import` and `dvcr export` emit with
// -o json, render as a bar at a terminal, and the provisioning controller
// turns into status.
package progress

import (
	"sync"
	"time"
)

// Interval spaces byte-count events.
const Interval = 250 * time.Millisecond

// Event is a progress report.
type Event struct {
	Phase   string `json:"phase"`
	Bytes   int64  `json:"bytes"`
	Total   int64  `json:"total"` // -1 when unknown
	Message string `json:"message,omitempty"`
}

// IsNote tells a message that interrupts a phase (waiting, retry) from
// the phase itself.
func (e Event) IsNote() bool { return e.Message != "" }

// Counter counts bytes of the current phase and reports them, at most
// every Interval, plus at each phase change and note. A nil function
// reports nothing; events come one call at a time.
type Counter struct {
	mu    sync.Mutex
	fn    func(Event)
	phase string
	bytes int64
	total int64
	last  time.Time
}

// New returns a counter reporting to fn.
func New(fn func(Event)) *Counter { return &Counter{fn: fn} }

// Begin starts a phase at bytes of total (-1: unknown).
func (p *Counter) Begin(phase string, bytes, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.bytes, p.total = phase, bytes, total
	p.emitLocked()
}

// End reports the final count of the phase.
func (p *Counter) End() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.emitLocked()
}

// Write counts bytes; it is an io.Writer to sit in a TeeReader.
func (p *Counter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bytes += int64(len(b))
	if time.Since(p.last) >= Interval {
		p.emitLocked()
	}
	return len(b), nil
}

// Note reports a message under its own phase without leaving the current
// one.
func (p *Counter) Note(phase, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fn != nil {
		p.fn(Event{Phase: phase, Bytes: p.bytes, Total: p.total, Message: msg})
	}
}

// emitLocked reports the count; nothing before the first phase.
func (p *Counter) emitLocked() {
	p.last = time.Now()
	if p.fn != nil && p.phase != "" {
		p.fn(Event{Phase: p.phase, Bytes: p.bytes, Total: p.total})
	}
}
