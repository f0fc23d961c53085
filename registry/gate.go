package registry

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distribution/distribution/v3/registry/api/errcode"
)

// Gate switches the registry between read-write and read-only at runtime.
// While any hold is active, every write under /v2/ is answered with
// 503 Service Unavailable, a Retry-After header and an OCI UNAVAILABLE error,
// so that clients retry; reads pass through untouched.
type Gate struct {
	retryAfter time.Duration

	// transition serializes switches between read-write and read-only with
	// their OnChange calls, so that the calls come in the order of the
	// switches (a release racing with a new hold must not report read-write
	// last while the registry is read-only).
	transition sync.Mutex

	mu       sync.Mutex
	holds    map[uint64]string // active read-only holds by id, with their reason
	inflight map[uint64]Write  // write requests being served
	nextID   uint64
	drained  chan struct{} // closed and replaced whenever inflight becomes empty
	onChange func(readOnly bool)
	trackers []*WriteTracker
	// repository names the repository of a write request (set by Server).
	repository func(*http.Request) string
}

// Write describes a write request that is being served.
type Write struct {
	Method     string
	Path       string
	Remote     string
	Started    time.Time
	Repository string // "" when the path names none
}

func (w Write) String() string {
	return fmt.Sprintf("%s %s from %s (running %s)", w.Method, w.Path, w.Remote, time.Since(w.Started).Round(time.Millisecond))
}

// NewGate returns a read-write gate. retryAfter is what read-only answers
// tell clients to wait before retrying.
func NewGate(retryAfter time.Duration) *Gate {
	return &Gate{
		retryAfter: retryAfter,
		holds:      map[uint64]string{},
		inflight:   map[uint64]Write{},
		drained:    make(chan struct{}),
	}
}

// OnChange registers a function called with the new state whenever the
// registry switches between read-write and read-only (used for metrics).
// Calls are made one at a time, in the order of the switches; fn must not
// take or release holds of this gate.
func (g *Gate) OnChange(fn func(readOnly bool)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.onChange = fn
}

// ReadOnly reports whether writes are currently refused.
func (g *Gate) ReadOnly() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.holds) > 0
}

// InFlight lists the write requests being served, oldest first.
func (g *Gate) InFlight() []Write {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inflightLocked()
}

func (g *Gate) inflightLocked() []Write {
	out := make([]Write, 0, len(g.inflight))
	for _, w := range g.inflight {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// Hold is one reason for the registry to be read-only. Release it to let
// writes in again (when no other hold remains).
type Hold struct {
	gate *Gate
	id   uint64
	once sync.Once
}

// Release ends the hold; calling it more than once is harmless.
func (h *Hold) Release() {
	h.once.Do(func() { h.gate.release(h.id) })
}

// Enter makes the registry read-only at once, then waits up to drainTimeout
// (or until ctx ends) for the writes already in flight to finish. It always
// returns a Hold, which the caller must Release; the error wraps
// ErrDrainTimeout and lists the writes that were still running when the
// wait ended.
func (g *Gate) Enter(ctx context.Context, reason string, drainTimeout time.Duration) (*Hold, error) {
	hold := g.acquire(reason)
	return hold, g.Drain(ctx, drainTimeout)
}

// Close makes the registry read-only at once without waiting for the writes
// in flight (Drain waits for them); Release the Hold to end it.
func (g *Gate) Close(reason string) *Hold { return g.acquire(reason) }

// Drain waits up to drainTimeout (or until ctx ends) until no write is in
// flight; the error wraps ErrDrainTimeout and lists those still running.
func (g *Gate) Drain(ctx context.Context, drainTimeout time.Duration) error {
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	for {
		g.mu.Lock()
		if len(g.inflight) == 0 {
			g.mu.Unlock()
			return nil
		}
		wait := g.drained
		g.mu.Unlock()
		select {
		case <-wait:
		case <-timer.C:
			return g.drainError()
		case <-ctx.Done():
			if err := g.drainError(); err != nil {
				return fmt.Errorf("%w: %w", err, ctx.Err())
			}
			return ctx.Err()
		}
	}
}

func (g *Gate) drainError() error {
	pending := g.InFlight()
	if len(pending) == 0 {
		return nil
	}
	descr := make([]string, len(pending))
	for i, w := range pending {
		descr[i] = w.String()
	}
	return fmt.Errorf("%w: %d: %s", ErrDrainTimeout, len(pending), strings.Join(descr, "; "))
}

func (g *Gate) acquire(reason string) *Hold {
	g.transition.Lock()
	defer g.transition.Unlock()
	g.mu.Lock()
	g.nextID++
	id := g.nextID
	wasReadOnly := len(g.holds) > 0
	g.holds[id] = reason
	notify := g.onChange
	g.mu.Unlock()
	if !wasReadOnly && notify != nil {
		notify(true)
	}
	return &Hold{gate: g, id: id}
}

func (g *Gate) release(id uint64) {
	g.transition.Lock()
	defer g.transition.Unlock()
	g.mu.Lock()
	delete(g.holds, id)
	nowReadWrite := len(g.holds) == 0
	notify := g.onChange
	g.mu.Unlock()
	if nowReadWrite && notify != nil {
		notify(false)
	}
}

// admit registers a write request unless the registry is read-only.
func (g *Gate) admit(r *http.Request) (id uint64, reasons []string, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.holds) > 0 {
		for _, reason := range g.holds {
			reasons = append(reasons, reason)
		}
		sort.Strings(reasons)
		return 0, reasons, false
	}
	g.nextID++
	repo := g.repositoryOf(r)
	g.inflight[g.nextID] = Write{Method: r.Method, Path: r.URL.Path, Remote: r.RemoteAddr, Started: time.Now(), Repository: repo}
	for _, t := range g.trackers {
		t.add(repo)
	}
	return g.nextID, nil, true
}

func (g *Gate) done(id uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.inflight, id)
	if len(g.inflight) == 0 {
		close(g.drained)
		g.drained = make(chan struct{})
	}
}

// Middleware refuses writes while read-only and tracks writes in flight.
func (g *Gate) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsWrite(r) {
			next.ServeHTTP(w, r)
			return
		}
		id, reasons, ok := g.admit(r)
		if !ok {
			g.refuse(w, reasons)
			return
		}
		defer g.done(id)
		next.ServeHTTP(w, r)
	})
}

func (g *Gate) refuse(w http.ResponseWriter, reasons []string) {
	secs := int(g.retryAfter.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	msg := "registry is read-only (" + strings.Join(reasons, ", ") + "); retry later"
	_ = errcode.ServeJSON(w, errcode.ErrorCodeUnavailable.WithMessage(msg))
}

// IsWrite reports whether r changes the registry: any method but GET, HEAD
// and OPTIONS under the /v2/ API.
func IsWrite(r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, "/v2/") {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}
