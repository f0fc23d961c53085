package provisioning

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// job is one running import of one spec version of a resource.
type job struct {
	key     objectKey
	uid     types.UID
	version specVersion
	counted bool // holds one of the concurrency slots
	cancel  context.CancelFunc
	done    chan struct{}
}

// jobs tracks the running imports and the concurrency slots. A slot is
// freed when the import's goroutine ends, not when it is cancelled, so the
// limit holds for the imports actually running.
type jobs struct {
	mu      sync.Mutex
	limit   int
	used    int
	running map[objectKey]*job
	// ready holds the spec version each resource's last import made Ready,
	// until the cache shows it: a look at the resource in between must not
	// take the Provisioning it still shows for an import to start.
	ready map[types.UID]specVersion
	// onFree is called (outside the lock) when a slot frees.
	onFree func()
}

func newJobs(limit int) *jobs {
	return &jobs{limit: limit, running: map[objectKey]*job{}, ready: map[types.UID]specVersion{}}
}

// markReady records that version v of uid was imported.
func (js *jobs) markReady(uid types.UID, v specVersion) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.ready[uid] = v
}

// readyNotSeen reports whether version v of uid was imported although the
// caller's (cached) copy does not say so yet.
func (js *jobs) readyNotSeen(uid types.UID, v specVersion) bool {
	js.mu.Lock()
	defer js.mu.Unlock()
	r, ok := js.ready[uid]
	return ok && r.same(v)
}

// seenReady drops the record once the cache shows Ready (or the resource
// is gone).
func (js *jobs) seenReady(uid types.UID) {
	js.mu.Lock()
	defer js.mu.Unlock()
	delete(js.ready, uid)
}

// get is the job running for key, if any.
func (js *jobs) get(key objectKey) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.running[key]
}

// start registers a job for key; with counted it needs a free slot and
// reports false when there is none.
func (js *jobs) start(parent context.Context, key objectKey, uid types.UID, v specVersion, counted bool) (*job, context.Context, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if counted && js.used >= js.limit {
		return nil, nil, false
	}
	if counted {
		js.used++
	}
	ctx, cancel := context.WithCancel(parent)
	j := &job{key: key, uid: uid, version: v, counted: counted, cancel: cancel, done: make(chan struct{})}
	js.running[key] = j
	return j, ctx, true
}

// finish is called by the job's goroutine when it ends.
func (js *jobs) finish(j *job) {
	js.mu.Lock()
	if j.counted {
		js.used--
	}
	if js.running[j.key] == j {
		delete(js.running, j.key)
	}
	j.cancel()
	close(j.done)
	onFree := js.onFree
	js.mu.Unlock()
	if j.counted && onFree != nil {
		onFree()
	}
}

// stop cancels the job of key and waits (bounded) for it to end, so that a
// new import of the same resource never overlaps it.
func (js *jobs) stop(key objectKey) {
	js.mu.Lock()
	j := js.running[key]
	if j != nil {
		delete(js.running, key)
	}
	js.mu.Unlock()
	if j == nil {
		return
	}
	j.cancel()
	select {
	case <-j.done:
	case <-time.After(30 * time.Second):
	}
}

// cancelAll cancels every job (shutdown).
func (js *jobs) cancelAll() {
	js.mu.Lock()
	defer js.mu.Unlock()
	for _, j := range js.running {
		j.cancel()
	}
}

// busy is the number of slots in use.
func (js *jobs) busy() int {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.used
}

// retries remembers failed imports: how many in a row and when the next
// attempt may start. Kept in memory: after a restart a failed image gets
// one prompt retry, which is what an operator restarting DVCR expects.
type retries struct {
	mu   sync.Mutex
	byID map[types.UID]retryState
}

type retryState struct {
	version   specVersion
	failures  int
	next      time.Time
	permanent bool // retrying cannot help (a refused image, a bad checksum)
}

func newRetries() *retries { return &retries{byID: map[types.UID]retryState{}} }

// maxBackoff caps the wait between attempts.
const maxBackoff = 5 * time.Minute

// failed records a failure of version v and returns the wait before the
// next attempt (0 with permanent: none).
func (r *retries) failed(uid types.UID, v specVersion, permanent bool) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.byID[uid]
	if !st.version.same(v) {
		st = retryState{version: v}
	}
	st.failures++
	st.permanent = permanent
	wait := min(time.Duration(1<<min(st.failures-1, 10))*10*time.Second, maxBackoff)
	st.next = time.Now().Add(wait)
	r.byID[uid] = st
	if permanent {
		return 0
	}
	return wait
}

// due reports whether version v of uid may be imported again now; if not,
// how long to wait (0 and false: never, until the spec changes).
func (r *retries) due(uid types.UID, v specVersion) (bool, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.byID[uid]
	if !ok || !st.version.same(v) {
		return true, 0
	}
	if st.permanent {
		return false, 0
	}
	if wait := time.Until(st.next); wait > 0 {
		return false, wait
	}
	return true, 0
}

// forget drops the record of uid (deleted, or Ready).
func (r *retries) forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byID, uid)
}
