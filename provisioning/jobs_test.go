package provisioning

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/dvcr/dvcr/naming"
)

func TestJobsSlots(t *testing.T) {
	js := newJobs(2)
	ctx := context.Background()
	key := func(n string) objectKey { return objectKey{kind: naming.KindCVI, name: n} }
	a, _, ok1 := js.start(ctx, key("a"), "ua", v(1), true)
	b, _, ok2 := js.start(ctx, key("b"), "ub", v(1), true)
	_, _, ok3 := js.start(ctx, key("c"), "uc", v(1), true)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("slots: %t %t %t, want two of two", ok1, ok2, ok3)
	}
	if _, _, ok := js.start(ctx, key("upload"), "uu", v(1), false); !ok {
		t.Fatal("an uncounted job (an upload) must not need a slot")
	}
	stopped := make(chan struct{})
	go func() { js.stop(key("b")); close(stopped) }()
	time.Sleep(20 * time.Millisecond)
	if got := js.busy(); got != 2 { // cancelled but not ended: its slot is still held
		t.Fatalf("busy %d after a cancel before the job ended, want 2", got)
	}
	js.finish(b)
	<-stopped
	js.finish(a)
	if _, _, ok := js.start(ctx, key("c"), "uc", v(1), true); !ok {
		t.Fatal("no slot after a job finished")
	}
	if _, _, ok := js.start(ctx, key("d"), "ud", v(1), true); !ok {
		t.Fatal("two slots free after two jobs ended")
	}
	if js.get(key("a")) != nil {
		t.Error("a finished job is still listed")
	}
}

func TestJobsWakeWhenASlotFrees(t *testing.T) {
	js := newJobs(1)
	woken := 0
	js.onFree = func() { woken++ }
	j, _, _ := js.start(context.Background(), objectKey{kind: naming.KindCVI, name: "a"}, "u", v(1), true)
	u, _, _ := js.start(context.Background(), objectKey{kind: naming.KindCVI, name: "up"}, "u2", v(1), false)
	js.finish(u) // an upload holds no slot: nobody to wake
	js.finish(j)
	if woken != 1 {
		t.Fatalf("onFree called %d times, want once", woken)
	}
	js.markReady("u", v(1))
	if !js.readyNotSeen("u", v(1)) || js.readyNotSeen("u", v(2)) {
		t.Fatal("readyNotSeen: want generation 1 only")
	}
	js.seenReady("u")
	if js.readyNotSeen("u", v(1)) {
		t.Fatal("still recorded after seenReady")
	}
}

func TestJobsStopWaitsForTheJob(t *testing.T) {
	js := newJobs(1)
	k := objectKey{kind: naming.KindVI, namespace: "ns", name: "x"}
	j, ctx, _ := js.start(context.Background(), k, "u", v(1), true)
	go func() {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		js.finish(j)
	}()
	start := time.Now()
	js.stop(k)
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("stop returned before the job ended")
	}
	if js.busy() != 0 {
		t.Fatal("slot not freed")
	}
}

func TestRetries(t *testing.T) {
	r := newRetries()
	uid := types.UID("u1")
	if due, _ := r.due(uid, v(1)); !due {
		t.Fatal("a fresh image is due")
	}
	waits := []time.Duration{}
	for range 8 {
		waits = append(waits, r.failed(uid, v(1), false))
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] || waits[i] > maxBackoff {
			t.Fatalf("backoff %v not rising up to %v", waits, maxBackoff)
		}
	}
	if due, wait := r.due(uid, v(1)); due || wait <= 0 {
		t.Errorf("after a failure: due %t wait %v", due, wait)
	}
	if due, _ := r.due(uid, v(2)); !due {
		t.Error("a new generation is due at once")
	}
	if wait := r.failed(uid, v(2), true); wait != 0 {
		t.Errorf("a permanent failure waits %v", wait)
	}
	if due, wait := r.due(uid, v(2)); due || wait != 0 {
		t.Errorf("a permanent failure: due %t wait %v, want never", due, wait)
	}
	r.forget(uid)
	if due, _ := r.due(uid, v(2)); !due {
		t.Error("forgotten image not due")
	}
}

// v is a spec version of generation n whose spec differs from any other n's.
func v(n int64) specVersion { return specVersion{gen: n, digest: fmt.Sprint("spec ", n)} }
