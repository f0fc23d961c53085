package gc

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/naming"
)

// TestCollectorFreesAfterWindow: on the filesystem driver the window only
// detaches; the space is freed with the registry writable again, freed is
// what emptying the trash deleted, and the run leaves no state behind.
func TestCollectorFreesAfterWindow(t *testing.T) {
	f := newSweepFixture(t)
	f.image("vi/ns/live", "latest", "shared", "live")
	var orphaned []digest.Digest
	for _, name := range []string{"gone-1", "gone-2"} {
		m, cfg, l := f.image("vi/ns/"+name, "latest", "shared", name)
		orphaned = append(orphaned, m.Digest, cfg.Digest, l[1].Digest)
	}
	c, live := newTestCollector(listerFunc(func(context.Context) (*ClusterInventory, error) {
		return &ClusterInventory{Resources: []Resource{{Kind: naming.KindVI, Namespace: "ns", Name: "live"}}}, nil
	}))
	c.Driver = f.driver
	c.Store = NewResultStore(f.driver)
	c.Now = later
	var mu sync.Mutex
	readOnlyWhileFreeing := false
	var lines []string
	res, err := c.Run(f.ctx, "manual", func(line string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line)
		if strings.HasPrefix(line, "freeing space") || strings.HasPrefix(line, "freed ") {
			readOnlyWhileFreeing = readOnlyWhileFreeing || live.gate.ReadOnly()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	log := strings.Join(lines, "\n")
	if !strings.Contains(log, "freed ") {
		t.Fatalf("no freeing after the window:\n%s", log)
	}
	if readOnlyWhileFreeing {
		t.Errorf("the registry was read-only while the space was freed:\n%s", log)
	}
	if want := f.size(orphaned...); res.Freed != want || res.Sweep.FreedBytes != want {
		t.Errorf("freed %d (sweep detached %d), want %d", res.Freed, res.Sweep.FreedBytes, want)
	}
	if res.FreedAt == nil || res.FreedAt.Before(res.StartedAt) {
		t.Errorf("freedAt = %v, want a time after the start %v", res.FreedAt, res.StartedAt)
	}
	for _, d := range orphaned {
		if f.hasBlob(d) {
			t.Errorf("blob %s of an orphan is still in storage", d)
		}
	}
	for _, p := range []string{trashRoot + "/" + runID(res.StartedAt), journalPath(runID(res.StartedAt)), markerPath} {
		if f.exists(p) {
			t.Errorf("%s is left after a successful run", p)
		}
	}
}

// TestRecover: after a crash mid removal of a legacy repository, the start
// records the run as interrupted, finishes the removal without touching the
// namespace nested in it, and the leftover trash is freed.
func TestRecover(t *testing.T) {
	f := newSweepFixture(t)
	f.image("vi/legacy", "latest", "a")
	nested, _, _ := f.image("vi/legacy/img", "latest", "b")
	_, _, lost := f.image("vi/ns/lost", "latest", "c")
	// The crash: _manifests of vi/legacy and a condemned blob were moved to
	// the trash, _layers not yet.
	tr := newTrash(f.driver, "run1")
	for _, p := range []string{"/docker/registry/v2/repositories/vi/legacy/_manifests", blobDirOf(lost[0].Digest)} {
		if err := tr.discard(f.ctx, p, 0); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	if err := writeJournal(f.ctx, f.driver, "run1", []string{"vi/legacy", "vi/ns/lost"}); err != nil {
		t.Fatal(err)
	}
	if err := writeMarker(f.ctx, f.driver, runMarker{Run: "run1", Trigger: "schedule", StartedAt: started, Phase: phaseWindow}); err != nil {
		t.Fatal(err)
	}
	c, _ := newTestCollector(nil)
	c.Driver = f.driver
	c.Store = NewResultStore(f.driver)
	if err := c.Recover(f.ctx, func(string) {}); err != nil {
		t.Fatal(err)
	}
	records, err := c.Store.List(f.ctx)
	if err != nil || len(records) != 1 {
		t.Fatalf("records %v, %v; want the interrupted run", records, err)
	}
	if r := records[0]; r.Result != ResultFail || r.Reason != ReasonInterrupted || !r.StartedAt.Equal(started) ||
		!strings.Contains(r.Error, phaseWindow) || r.Trigger != "schedule" {
		t.Errorf("record %+v, want fail/interrupted naming the phase", r)
	}
	if f.exists("/docker/registry/v2/repositories/vi/legacy/_layers") {
		t.Error("the half-removed repository's _layers is still there")
	}
	if !f.hasRevision("vi/legacy/img", nested.Digest) {
		t.Error("the namespace nested in the legacy repository lost its manifest")
	}
	if !f.exists("/docker/registry/v2/repositories/vi/ns/lost/_manifests") {
		t.Error("a journaled repository the run had not reached was touched")
	}
	for _, p := range []string{markerPath, journalPath("run1")} {
		if f.exists(p) {
			t.Errorf("%s is left after recovery", p)
		}
	}
	freed, err := c.FreeLeftovers(f.ctx, func(string) {})
	if err != nil || freed != f.size(lost[0].Digest) {
		t.Errorf("FreeLeftovers freed %d, %v; want %d", freed, err, f.size(lost[0].Digest))
	}
	if f.exists(trashRoot + "/run1") {
		t.Error("the trash of the interrupted run is still there")
	}
}

func blobDirOf(d digest.Digest) string {
	hex := d.Encoded()
	return "/docker/registry/v2/blobs/" + string(d.Algorithm()) + "/" + hex[:2] + "/" + hex
}

// TestResultStoreSurvivesCrashWhileWriting: a crash between writing the new
// records and putting them in place keeps the previous records.
func TestResultStoreSurvivesCrashWhileWriting(t *testing.T) {
	f := newSweepFixture(t)
	store := NewResultStore(f.driver)
	if err := store.Add(f.ctx, Result{Result: ResultSuccess, Trigger: "first"}); err != nil {
		t.Fatal(err)
	}
	crashing := newResultStore(f.driver, func(string) { panic("crash") })
	func() {
		defer func() { _ = recover() }()
		_ = crashing.Add(f.ctx, Result{Result: ResultSuccess, Trigger: "second"})
	}()
	list, err := NewResultStore(f.driver).List(f.ctx)
	if err != nil || len(list) != 1 || list[0].Trigger != "first" {
		t.Fatalf("records after the crash: %+v, %v; want the first one whole", list, err)
	}
}

func TestParseFault(t *testing.T) {
	cases := []struct {
		spec, point string
		nth         int
		err         string
	}{
		{"mark", "mark", 1, ""},
		{"detach:3", "detach", 3, ""},
		{"record", "record", 1, ""},
		{"sweep", "", 0, "unknown fault point"},
		{"mark:0", "", 0, "positive number"},
		{"mark:x", "", 0, "positive number"},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			point, nth, err := parseFault(tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), FaultEnv) {
					t.Fatalf("error %v, want one naming %s and %q", err, FaultEnv, tc.err)
				}
				return
			}
			if err != nil || point != tc.point || nth != tc.nth {
				t.Fatalf("got %q, %d, %v; want %q, %d", point, nth, err, tc.point, tc.nth)
			}
		})
	}
}
