// The progress counter of the collector's phases.

package gc

import (
	"fmt"
	"sync"
	"time"
)

// phaseProgress reports "<phase>: <done>/<total> <unit>" at most about every
// second, and at every 10%.
type phaseProgress struct {
	fn                  func(string)
	phase, unit         string
	total               int
	mu                  sync.Mutex
	done, reportedTenth int
	last                time.Time
}

func newPhaseProgress(fn func(string), phase, unit string, total int) *phaseProgress {
	return &phaseProgress{fn: fn, phase: phase, unit: unit, total: total, last: time.Now()}
}

func (p *phaseProgress) add(n int) {
	if p.fn == nil || p.total == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	tenth := p.done * 10 / p.total
	now := time.Now()
	if tenth > p.reportedTenth || now.Sub(p.last) >= time.Second {
		p.reportedTenth = tenth
		p.last = now
		p.fn(fmt.Sprintf("%s: %d/%d %s", p.phase, p.done, p.total, p.unit))
	}
}

// serialized wraps progress so that its calls never overlap: the removal
// and the sweep report from their own goroutines.
func serialized(progress func(string)) func(string) {
	if progress == nil {
		return func(string) {}
	}
	var mu sync.Mutex
	return func(line string) {
		mu.Lock()
		defer mu.Unlock()
		progress(line)
	}
}
