package provisioning

import (
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/dvcr/dvcr/naming"
)

// waitList holds the images waiting for an import slot, and wakes them when
// one frees: without it they would look again only after slotWait, and a
// slot would sit idle meanwhile.
type waitList struct {
	mu    sync.Mutex
	keys  map[objectKey]struct{}
	kinds map[naming.Kind]kindInfo
	chans map[naming.Kind]chan event.GenericEvent
}

func newWaitList() *waitList {
	w := &waitList{keys: map[objectKey]struct{}{}, kinds: map[naming.Kind]kindInfo{}, chans: map[naming.Kind]chan event.GenericEvent{}}
	for _, k := range []kindInfo{cviKind, viKind} {
		w.kinds[k.kind] = k
		w.chans[k.kind] = make(chan event.GenericEvent, 1024)
	}
	return w
}

// channel is the event source of a kind's controller.
func (w *waitList) channel(k kindInfo) <-chan event.GenericEvent { return w.chans[k.kind] }

// add records an image that found no free slot.
func (w *waitList) add(key objectKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.keys[key] = struct{}{}
}

// wake queues every waiting image for a reconcile; those that again find
// no slot add themselves back. A full channel drops the event: the image
// still looks again after slotWait.
func (w *waitList) wake() {
	w.mu.Lock()
	keys := w.keys
	w.keys = map[objectKey]struct{}{}
	w.mu.Unlock()
	for key := range keys {
		obj := w.kinds[key.kind].newObject()
		obj.SetNamespace(key.namespace)
		obj.SetName(key.name)
		select {
		case w.chans[key.kind] <- event.GenericEvent{Object: obj}:
		default:
		}
	}
}
