package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dvcr/dvcr/registry"
)

// blockingBackend is the handler behind the gate: requests to a path under
// /v2/block/ signal started and wait for release; everything else answers
// 200 at once. active counts write requests being served.
type blockingBackend struct {
	started chan string
	release chan struct{}
	active  atomic.Int64
}

func newBlockingBackend() *blockingBackend {
	return &blockingBackend{started: make(chan string, 16), release: make(chan struct{})}
}

func (b *blockingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if registry.IsWrite(r) {
		b.active.Add(1)
		defer b.active.Add(-1)
	}
	if strings.HasPrefix(r.URL.Path, "/v2/block/") {
		b.started <- r.Method + " " + r.URL.Path
		<-b.release
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "backend")
}

// do sends a request to h and returns the recorded response.
func do(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// startWrite serves a blocking write in the background and waits until the
// backend has it; the returned channel yields its response.
func startWrite(t *testing.T, h http.Handler, b *blockingBackend, method, path string) <-chan *httptest.ResponseRecorder {
	t.Helper()
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- do(h, method, path) }()
	select {
	case got := <-b.started:
		if got != method+" "+path {
			t.Fatalf("backend started %q, want %q", got, method+" "+path)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write did not reach the backend")
	}
	return done
}

func TestIsWrite(t *testing.T) {
	tests := []struct {
		method, path string
		want         bool
	}{
		{http.MethodPost, "/v2/cvi/x/blobs/uploads/", true},
		{http.MethodPut, "/v2/cvi/x/manifests/latest", true},
		{http.MethodPatch, "/v2/vi/ns/x/blobs/uploads/abc", true},
		{http.MethodDelete, "/v2/vd/ns/x/manifests/sha256:abc", true},
		{http.MethodGet, "/v2/cvi/x/manifests/latest", false},
		{http.MethodHead, "/v2/cvi/x/blobs/sha256:abc", false},
		{http.MethodOptions, "/v2/cvi/x/manifests/latest", false},
		{http.MethodGet, "/v2/", false},
		{http.MethodPost, "/admin/gc", false},
		{http.MethodPut, "/metrics", false},
		{http.MethodDelete, "/v2", false},
		{http.MethodPost, "/v2x/foo", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			if got := registry.IsWrite(httptest.NewRequest(tt.method, tt.path, nil)); got != tt.want {
				t.Errorf("IsWrite = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestGateWhileHeld(t *testing.T) {
	tests := []struct {
		method, path string
		refused      bool
	}{
		{http.MethodPost, "/v2/cvi/ubuntu/blobs/uploads/", true},
		{http.MethodPut, "/v2/cvi/ubuntu/manifests/latest", true},
		{http.MethodPatch, "/v2/vi/ns/ubuntu/blobs/uploads/uuid", true},
		{http.MethodDelete, "/v2/vd/ns/disk/manifests/sha256:0000", true},
		{http.MethodGet, "/v2/cvi/ubuntu/manifests/latest", false},
		{http.MethodHead, "/v2/cvi/ubuntu/blobs/sha256:0000", false},
		{http.MethodGet, "/v2/", false},
		{http.MethodOptions, "/v2/cvi/ubuntu/manifests/latest", false},
		{http.MethodPost, "/admin/gc", false},
		{http.MethodGet, "/metrics", false},
	}
	b := newBlockingBackend()
	gate := registry.NewGate(10 * time.Second)
	h := gate.Middleware(b)
	if gate.ReadOnly() {
		t.Fatal("new gate is read-only")
	}
	hold1, err := gate.Enter(context.Background(), "garbage collection", time.Second)
	if err != nil {
		t.Fatalf("Enter: %v", err)
	}
	hold2, err := gate.Enter(context.Background(), "another hold", time.Second)
	if err != nil {
		t.Fatalf("Enter: %v", err)
	}
	if !gate.ReadOnly() {
		t.Fatal("gate is not read-only after Enter")
	}
	for _, tt := range tests {
		t.Run("held "+tt.method+" "+tt.path, func(t *testing.T) {
			rec := do(h, tt.method, tt.path)
			if !tt.refused {
				if rec.Code != http.StatusOK || rec.Body.String() != "backend" {
					t.Errorf("got %d %q, want the backend's answer", rec.Code, rec.Body)
				}
				return
			}
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want 503", rec.Code)
			}
			if got := rec.Header().Get("Retry-After"); got != "10" {
				t.Errorf("Retry-After = %q, want 10", got)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			var body struct {
				Errors []struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if len(body.Errors) != 1 || body.Errors[0].Code != "UNAVAILABLE" {
				t.Fatalf("body = %s, want one UNAVAILABLE error", rec.Body)
			}
			msg := body.Errors[0].Message
			if !strings.Contains(msg, "read-only") || !strings.Contains(msg, "another hold, garbage collection") {
				t.Errorf("message %q does not give the sorted reasons", msg)
			}
		})
	}
	if n := b.active.Load(); n != 0 {
		t.Errorf("%d writes reached the backend while read-only", n)
	}

	// Releasing one of two holds leaves the registry read-only.
	hold1.Release()
	hold1.Release() // idempotent: must not release hold2
	if !gate.ReadOnly() {
		t.Fatal("releasing one of two holds made the registry writable")
	}
	if rec := do(h, http.MethodPut, "/v2/cvi/ubuntu/manifests/latest"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("write with one hold left: %d, want 503", rec.Code)
	}
	hold2.Release()
	if gate.ReadOnly() {
		t.Fatal("read-only after releasing every hold")
	}
	for _, tt := range tests {
		t.Run("released "+tt.method+" "+tt.path, func(t *testing.T) {
			if rec := do(h, tt.method, tt.path); rec.Code != http.StatusOK {
				t.Errorf("status = %d, want 200 from the backend", rec.Code)
			}
		})
	}
}

func TestGateRetryAfter(t *testing.T) {
	tests := []struct {
		retryAfter time.Duration
		want       string
	}{
		{10 * time.Second, "10"},
		{90 * time.Second, "90"},
		{1500 * time.Millisecond, "2"},
		{time.Second, "1"},
		{100 * time.Millisecond, "1"}, // never 0: clients would retry at once
		{0, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.retryAfter.String(), func(t *testing.T) {
			gate := registry.NewGate(tt.retryAfter)
			hold, _ := gate.Enter(context.Background(), "test", time.Second)
			defer hold.Release()
			rec := do(gate.Middleware(newBlockingBackend()), http.MethodPost, "/v2/cvi/x/blobs/uploads/")
			if got := rec.Header().Get("Retry-After"); got != tt.want {
				t.Errorf("Retry-After = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGateEnterWaitsForInFlightWrite(t *testing.T) {
	b := newBlockingBackend()
	gate := registry.NewGate(time.Second)
	h := gate.Middleware(b)

	const path = "/v2/block/cvi/ubuntu/blobs/uploads/uuid"
	write := startWrite(t, h, b, http.MethodPut, path)
	inflight := gate.InFlight()
	if len(inflight) != 1 || inflight[0].Method != http.MethodPut || inflight[0].Path != path {
		t.Fatalf("InFlight = %v, want the PUT", inflight)
	}

	type result struct {
		hold *registry.Hold
		err  error
	}
	entered := make(chan result, 1)
	go func() {
		hold, err := gate.Enter(context.Background(), "gc", time.Minute)
		entered <- result{hold, err}
	}()

	// Read-only at once, while the in-flight write is still running.
	deadline := time.Now().Add(5 * time.Second)
	for !gate.ReadOnly() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !gate.ReadOnly() {
		t.Fatal("Enter did not make the registry read-only")
	}
	if rec := do(h, http.MethodPost, "/v2/cvi/other/blobs/uploads/"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("new write during the drain: %d, want 503", rec.Code)
	}
	if rec := do(h, http.MethodGet, "/v2/cvi/ubuntu/manifests/latest"); rec.Code != http.StatusOK {
		t.Errorf("read during the drain: %d, want 200", rec.Code)
	}
	select {
	case r := <-entered:
		t.Fatalf("Enter returned (%v) while a write was in flight", r.err)
	case <-time.After(50 * time.Millisecond):
	}

	close(b.release)
	if rec := <-write; rec.Code != http.StatusOK {
		t.Errorf("in-flight write finished with %d, want 200", rec.Code)
	}
	select {
	case r := <-entered:
		if r.err != nil {
			t.Errorf("Enter = %v, want nil once the write finished", r.err)
		}
		if r.hold == nil {
			t.Fatal("Enter returned no hold")
		}
		if n := len(gate.InFlight()); n != 0 {
			t.Errorf("%d writes in flight after Enter", n)
		}
		r.hold.Release()
	case <-time.After(5 * time.Second):
		t.Fatal("Enter did not return after the write finished")
	}
	if gate.ReadOnly() {
		t.Error("read-only after Release")
	}
}

func TestGateEnterErrors(t *testing.T) {
	const path = "/v2/block/vi/ns/ubuntu/blobs/uploads/uuid"
	tests := []struct {
		name         string
		drainTimeout time.Duration
		ctx          func() (context.Context, context.CancelFunc)
		wantCtxErr   error
	}{
		{
			name:         "drain timeout",
			drainTimeout: 50 * time.Millisecond,
			ctx:          func() (context.Context, context.CancelFunc) { return context.Background(), func() {} },
		},
		{
			name:         "zero drain timeout",
			drainTimeout: 0,
			ctx:          func() (context.Context, context.CancelFunc) { return context.Background(), func() {} },
		},
		{
			name:         "context cancelled",
			drainTimeout: time.Hour,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx, cancel
			},
			wantCtxErr: context.Canceled,
		},
		{
			name:         "context deadline",
			drainTimeout: time.Hour,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			},
			wantCtxErr: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBlockingBackend()
			gate := registry.NewGate(time.Second)
			h := gate.Middleware(b)
			write := startWrite(t, h, b, http.MethodPatch, path)

			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			hold, err := gate.Enter(ctx, "gc", tt.drainTimeout)
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("Enter took %s", elapsed)
			}
			if hold == nil {
				t.Fatal("Enter returned no hold with the error")
			}
			if !errors.Is(err, registry.ErrDrainTimeout) {
				t.Errorf("err = %v, want ErrDrainTimeout", err)
			}
			if tt.wantCtxErr != nil && !errors.Is(err, tt.wantCtxErr) {
				t.Errorf("err = %v, want %v", err, tt.wantCtxErr)
			}
			if err != nil && (!strings.Contains(err.Error(), "PATCH") || !strings.Contains(err.Error(), path)) {
				t.Errorf("err = %q does not name the pending PATCH %s", err, path)
			}
			// Read-only nevertheless, until released.
			if !gate.ReadOnly() {
				t.Error("not read-only after a drain timeout")
			}
			if rec := do(h, http.MethodPut, "/v2/cvi/x/manifests/latest"); rec.Code != http.StatusServiceUnavailable {
				t.Errorf("write after drain timeout: %d, want 503", rec.Code)
			}
			hold.Release()
			if gate.ReadOnly() {
				t.Error("read-only after Release")
			}
			close(b.release)
			if rec := <-write; rec.Code != http.StatusOK {
				t.Errorf("pending write finished with %d", rec.Code)
			}
			if n := len(gate.InFlight()); n != 0 {
				t.Errorf("InFlight has %d writes after they finished", n)
			}
		})
	}
}

// TestGateEnterNothingInFlight: with no write in flight Enter returns at
// once, even with a zero drain timeout or an already cancelled context
// (the registry is drained, which is all Enter waits for).
func TestGateEnterNothingInFlight(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name         string
		ctx          context.Context
		drainTimeout time.Duration
	}{
		{"zero timeout", context.Background(), 0},
		{"cancelled context", cancelled, time.Minute},
		{"long timeout", context.Background(), time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := registry.NewGate(time.Second)
			hold, err := gate.Enter(tt.ctx, "gc", tt.drainTimeout)
			if err != nil {
				t.Errorf("Enter = %v", err)
			}
			if !gate.ReadOnly() {
				t.Error("not read-only")
			}
			hold.Release()
			if gate.ReadOnly() {
				t.Error("read-only after Release")
			}
		})
	}
}

func TestGateWriteThatPanicsLeavesInFlight(t *testing.T) {
	gate := registry.NewGate(time.Second)
	h := gate.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	func() {
		defer func() {
			if r := recover(); r != http.ErrAbortHandler {
				t.Errorf("recovered %v", r)
			}
		}()
		do(h, http.MethodPut, "/v2/cvi/x/manifests/latest")
	}()
	if n := len(gate.InFlight()); n != 0 {
		t.Fatalf("a panicking write stays in flight (%d)", n)
	}
	hold, err := gate.Enter(context.Background(), "gc", 50*time.Millisecond)
	defer hold.Release()
	if err != nil {
		t.Errorf("Enter after a panicking write: %v", err)
	}
}

func TestGateInFlightOrder(t *testing.T) {
	b := newBlockingBackend()
	gate := registry.NewGate(time.Second)
	h := gate.Middleware(b)
	paths := []string{"/v2/block/cvi/a/blobs/uploads/", "/v2/block/cvi/b/blobs/uploads/", "/v2/block/cvi/c/blobs/uploads/"}
	var writes []<-chan *httptest.ResponseRecorder
	for _, p := range paths {
		writes = append(writes, startWrite(t, h, b, http.MethodPost, p))
		time.Sleep(2 * time.Millisecond) // distinct start times
	}
	got := gate.InFlight()
	if len(got) != len(paths) {
		t.Fatalf("InFlight = %v", got)
	}
	for i, w := range got {
		if w.Path != paths[i] || w.Method != http.MethodPost || w.Started.IsZero() {
			t.Errorf("InFlight[%d] = %+v, want POST %s (oldest first)", i, w, paths[i])
		}
		if s := w.String(); !strings.Contains(s, "POST "+paths[i]) {
			t.Errorf("String() = %q", s)
		}
	}
	close(b.release)
	for _, w := range writes {
		<-w
	}
	if n := len(gate.InFlight()); n != 0 {
		t.Errorf("InFlight = %d after the writes finished", n)
	}
}

// onChangeRecorder records the states OnChange reports.
type onChangeRecorder struct {
	mu     sync.Mutex
	states []bool
}

func (r *onChangeRecorder) record(readOnly bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, readOnly)
}

func (r *onChangeRecorder) get() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.states...)
}

func TestGateOnChange(t *testing.T) {
	gate := registry.NewGate(time.Second)
	rec := &onChangeRecorder{}
	gate.OnChange(rec.record)
	enter := func() *registry.Hold {
		h, err := gate.Enter(context.Background(), "test", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var h1, h2, h3 *registry.Hold
	steps := []struct {
		name string
		do   func()
		want []bool
	}{
		{"first hold", func() { h1 = enter() }, []bool{true}},
		{"second hold", func() { h2 = enter() }, []bool{true}},
		{"release first", func() { h1.Release() }, []bool{true}},
		{"release first again", func() { h1.Release() }, []bool{true}},
		{"release second", func() { h2.Release() }, []bool{true, false}},
		{"release second again", func() { h2.Release() }, []bool{true, false}},
		{"hold again", func() { h3 = enter() }, []bool{true, false, true}},
		{"release", func() { h3.Release() }, []bool{true, false, true, false}},
	}
	for _, s := range steps {
		s.do()
		if got := rec.get(); !equalBools(got, s.want) {
			t.Fatalf("after %s: OnChange calls %v, want %v", s.name, got, s.want)
		}
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGateOnChangeOrderUnderRace: holds taken and released concurrently
// must produce alternating OnChange calls, the last one matching the final
// state (a release racing with a new hold must not be reported last).
func TestGateOnChangeOrderUnderRace(t *testing.T) {
	gate := registry.NewGate(time.Second)
	rec := &onChangeRecorder{}
	gate.OnChange(rec.record)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				h, _ := gate.Enter(context.Background(), "race", time.Second)
				h.Release()
			}
		})
	}
	wg.Wait()
	states := rec.get()
	if len(states) == 0 || len(states)%2 != 0 {
		t.Fatalf("%d OnChange calls, want an even number > 0", len(states))
	}
	for i, s := range states {
		if s != (i%2 == 0) {
			t.Fatalf("OnChange call %d reported %t: calls do not alternate", i, s)
		}
	}
	if gate.ReadOnly() {
		t.Error("read-only after every hold was released")
	}
}

// TestGateConcurrent runs writes and reads while holds come and go: once
// Enter returns nil no write is running in the backend until the hold is
// released. Run with -race.
func TestGateConcurrent(t *testing.T) {
	b := newBlockingBackend()
	close(b.release)
	gate := registry.NewGate(time.Second)
	h := gate.Middleware(b)
	stop := make(chan struct{})
	var clients sync.WaitGroup
	var served, refused atomic.Int64
	for i := range 8 {
		clients.Go(func() {
			method := []string{http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodGet}[i%5]
			for {
				select {
				case <-stop:
					return
				default:
				}
				switch do(h, method, "/v2/cvi/x/blobs/uploads/").Code {
				case http.StatusOK:
					served.Add(1)
				case http.StatusServiceUnavailable:
					refused.Add(1)
				}
			}
		})
	}
	for range 200 {
		hold, err := gate.Enter(context.Background(), "gc", 5*time.Second)
		if err != nil {
			t.Fatalf("Enter: %v", err)
		}
		if n := b.active.Load(); n != 0 {
			t.Fatalf("%d writes running in the backend after Enter returned", n)
		}
		time.Sleep(100 * time.Microsecond)
		if n := b.active.Load(); n != 0 {
			t.Fatalf("%d writes running in the backend while read-only", n)
		}
		hold.Release()
	}
	close(stop)
	clients.Wait()
	if served.Load() == 0 || refused.Load() == 0 {
		t.Errorf("served %d, refused %d: want both", served.Load(), refused.Load())
	}
}
