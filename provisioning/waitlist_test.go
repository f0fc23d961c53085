package provisioning

import (
	"testing"

	"github.com/dvcr/dvcr/naming"
)

func TestWaitListWakesEachKind(t *testing.T) {
	w := newWaitList()
	w.add(objectKey{kind: naming.KindCVI, name: "a"})
	w.add(objectKey{kind: naming.KindVI, namespace: "ns", name: "b"})
	w.add(objectKey{kind: naming.KindVI, namespace: "ns", name: "b"}) // once is enough
	w.wake()
	cvi, vi := w.channel(cviKind), w.channel(viKind)
	if len(cvi) != 1 || len(vi) != 1 {
		t.Fatalf("events: %d cvi, %d vi, want 1 and 1", len(cvi), len(vi))
	}
	if e := <-vi; e.Object.GetNamespace() != "ns" || e.Object.GetName() != "b" {
		t.Fatalf("vi event for %s/%s", e.Object.GetNamespace(), e.Object.GetName())
	}
	w.wake()
	if len(cvi) != 1 {
		t.Fatal("a second wake with nobody waiting sent events")
	}
}
