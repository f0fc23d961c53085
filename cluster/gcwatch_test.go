package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// TestWatchGC: the watch starts from a list, which signals; a change
// signals; a watch the API server ends is resumed from the last version
// seen, without a list; an expired version (410 as an event, or the watch
// refused with 410) lists again and watches from the new list.
func TestWatchGC(t *testing.T) {
	leases := &scriptedLeases{LeaseInterface: fake.NewClientset().CoordinationV1().Leases("ns"), rv: "5", watches: make(chan scriptedWatch, 4)}
	r := &Replica{Settings: Settings{RenewDeadline: 250 * time.Millisecond}, Leases: leases}
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.watchGC(ctx, changed)

	expectSignal(t, changed)
	w := leases.next(t, "5", 1)
	w.Modify(&coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: GCLease, Namespace: "ns", ResourceVersion: "6"}})
	expectSignal(t, changed)

	w.Stop() // the API server ends the watch
	w = leases.next(t, "6", 1)

	leases.set("9", 0)
	w.Error(&apierrors.NewResourceExpired("too old resource version").ErrStatus)
	w = leases.next(t, "9", 2)
	expectSignal(t, changed)

	leases.set("12", 1)
	w.Stop()
	leases.next(t, "12", 3)
}

func expectSignal(t *testing.T, changed <-chan struct{}) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no change signalled")
	}
}

// scriptedLeases lists at version rv and hands each watch to the test;
// the next refuse watches are refused with 410 Gone.
type scriptedLeases struct {
	coordclient.LeaseInterface
	watches chan scriptedWatch

	mu     sync.Mutex
	rv     string
	refuse int
	lists  int
}

type scriptedWatch struct {
	opts metav1.ListOptions
	w    *watch.FakeWatcher
}

func (s *scriptedLeases) set(rv string, refuse int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rv, s.refuse = rv, refuse
}

func (s *scriptedLeases) List(context.Context, metav1.ListOptions) (*coordv1.LeaseList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists++
	return &coordv1.LeaseList{ListMeta: metav1.ListMeta{ResourceVersion: s.rv}}, nil
}

func (s *scriptedLeases) Watch(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	s.mu.Lock()
	if s.refuse > 0 {
		s.refuse--
		s.mu.Unlock()
		return nil, apierrors.NewResourceExpired("too old resource version")
	}
	s.mu.Unlock()
	w := watch.NewFake()
	s.watches <- scriptedWatch{opts: opts, w: w}
	return w, nil
}

// next is the next watch; it must start at rv, after lists lists.
func (s *scriptedLeases) next(t *testing.T, rv string, lists int) *watch.FakeWatcher {
	t.Helper()
	select {
	case sw := <-s.watches:
		s.mu.Lock()
		defer s.mu.Unlock()
		if sw.opts.ResourceVersion != rv || sw.opts.FieldSelector != gcLeaseSelector || s.lists != lists {
			t.Fatalf("watch %+v after %d lists; want version %s, the GC Lease, after %d lists", sw.opts, s.lists, rv, lists)
		}
		return sw.w
	case <-time.After(5 * time.Second):
		t.Fatalf("no watch from version %s", rv)
		return nil
	}
}
