package gc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/registry"
)

// fakeLive is a registry reduced to its write gate; it counts cache resets.
type fakeLive struct {
	gate   *registry.Gate
	resets atomic.Int32
}

func (f *fakeLive) ResetCaches() error { f.resets.Add(1); return nil }

// listerFunc adapts a function to Lister.
type listerFunc func(ctx context.Context) (*ClusterInventory, error)

func (f listerFunc) List(ctx context.Context) (*ClusterInventory, error) { return f(ctx) }

func newTestCollector(lister Lister) (*Collector, *fakeLive) {
	live := &fakeLive{gate: registry.NewGate(time.Second)}
	driver := inmemory.New()
	return &Collector{
		Driver:    driver,
		NewLister: func() (Lister, error) { return lister, nil },
		Live:      &Live{Gate: live.gate, ResetCaches: live.ResetCaches},
		Settings: config.DVCR{GC: config.GC{
			Timeout: time.Minute, DrainTimeout: time.Second, GracePeriod: 0,
		}},
		Store: NewResultStore(driver),
	}, live
}

// TestCollectorAlwaysLeavesReadOnly: whatever ends the run — success, a
// failing API, the timeout, a panic — the registry is writable afterwards
// and the run is recorded.
func TestCollectorAlwaysLeavesReadOnly(t *testing.T) {
	empty := listerFunc(func(context.Context) (*ClusterInventory, error) { return &ClusterInventory{}, nil })
	cases := []struct {
		name    string
		lister  Lister
		timeout time.Duration
		wantErr string
	}{
		{"success", empty, time.Minute, ""},
		{"api failure", listerFunc(func(context.Context) (*ClusterInventory, error) {
			return nil, listError(naming.KindCVI, errors.New("connection refused"))
		}), time.Minute, "ClusterVirtualImage"},
		{"timeout", listerFunc(func(ctx context.Context) (*ClusterInventory, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}), 100 * time.Millisecond, "dvcr.gc.timeout"},
		{"panic", listerFunc(func(context.Context) (*ClusterInventory, error) { panic("boom") }), time.Minute, "panicked: boom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, live := newTestCollector(tc.lister)
			c.Settings.GC.Timeout = tc.timeout
			var sawReadOnly atomic.Bool
			res, err := c.Run(context.Background(), "manual", func(string) {
				if live.gate.ReadOnly() {
					sawReadOnly.Store(true)
				}
			})
			if !sawReadOnly.Load() {
				t.Error("the run never switched the registry read-only")
			}
			if live.gate.ReadOnly() {
				t.Fatal("registry still read-only after the run")
			}
			if tc.wantErr == "" {
				if err != nil || !res.Succeeded() {
					t.Fatalf("run: %v %+v", err, res)
				}
			} else if err == nil || res.Succeeded() || !strings.Contains(res.Error, tc.wantErr) {
				t.Fatalf("run: err %v, record error %q, want %q", err, res.Error, tc.wantErr)
			}
			recs, lerr := c.Store.List(context.Background())
			if lerr != nil || len(recs) != 1 || recs[0].Result != res.Result {
				t.Fatalf("records: %v %+v", lerr, recs)
			}
		})
	}
}

// TestCollectorRefusesOverlap: a second run while one is in progress fails
// at once.
func TestCollectorRefusesOverlap(t *testing.T) {
	release := make(chan struct{})
	c, _ := newTestCollector(listerFunc(func(context.Context) (*ClusterInventory, error) {
		<-release
		return &ClusterInventory{}, nil
	}))
	done := make(chan error, 1)
	go func() { _, err := c.Run(context.Background(), "schedule", nil); done <- err }()
	for !c.Running() {
		time.Sleep(time.Millisecond)
	}
	if res, err := c.Run(context.Background(), "manual", nil); !errors.Is(err, ErrRunInProgress) || res != nil {
		t.Fatalf("second run: %v %v, want ErrRunInProgress", res, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCollectorDrainTimeout: writes that outlive drainTimeout fail the run
// when no grace period protects what they write, and are tolerated (with a
// warning) when one does.
func TestCollectorDrainTimeout(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Hour} {
		t.Run("grace="+grace.String(), func(t *testing.T) {
			c, live := newTestCollector(listerFunc(func(context.Context) (*ClusterInventory, error) { return &ClusterInventory{}, nil }))
			c.Settings.GC.GracePeriod = grace
			c.Settings.GC.DrainTimeout = 50 * time.Millisecond
			stuck := make(chan struct{})
			defer close(stuck)
			holdWrite(t, live.gate, stuck)
			res, err := c.Run(context.Background(), "manual", nil)
			if grace == 0 && (err == nil || !strings.Contains(res.Error, "in flight")) {
				t.Fatalf("grace 0: %v %+v", err, res)
			}
			if grace > 0 && (err != nil || len(res.Warnings) == 0) {
				t.Fatalf("grace 1h: %v %+v", err, res)
			}
			if live.gate.ReadOnly() {
				t.Fatal("still read-only")
			}
		})
	}
}

// TestCollectorRemovesOrphans: on real filesystem storage, a run removes
// the orphan repositories and their blobs, keeps those of the live ones, a
// repository within the grace period stays with its blobs, and progress is
// called one line at a time (the race detector checks the unlocked append).
func TestCollectorRemovesOrphans(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Hour} {
		t.Run("grace="+grace.String(), func(t *testing.T) {
			f := newSweepFixture(t)
			_, _, liveL := f.image("vi/ns/live", "latest", "shared", "live")
			var orphanL [][]v1.Descriptor
			for _, name := range []string{"gone-1", "gone-2", "gone-3"} {
				_, _, l := f.image("vi/ns/"+name, "latest", "shared", name)
				orphanL = append(orphanL, l)
			}
			f.age(2 * time.Hour)
			f.image("vi/ns/gone-3", "new", "recent") // modified within the grace period
			c, _ := newTestCollector(listerFunc(func(context.Context) (*ClusterInventory, error) {
				return &ClusterInventory{Resources: []Resource{{Kind: naming.KindVI, Namespace: "ns", Name: "live"}}}, nil
			}))
			c.Driver = f.driver
			c.Settings.GC.GracePeriod = grace
			var lines []string
			res, err := c.Run(f.ctx, "manual", func(line string) { lines = append(lines, line) })
			if err != nil {
				t.Fatal(err)
			}
			wantDeleted, wantSkipped := 3, 0
			if grace > 0 {
				wantDeleted, wantSkipped = 2, 1
			}
			if len(res.Deleted) != wantDeleted || len(res.Skipped) != wantSkipped {
				t.Fatalf("deleted %d, skipped %d; want %d, %d", len(res.Deleted), len(res.Skipped), wantDeleted, wantSkipped)
			}
			if !f.hasBlob(liveL[0].Digest) || !f.hasBlob(liveL[1].Digest) {
				t.Error("a blob of the live repository was deleted")
			}
			for i, l := range orphanL {
				if want := grace > 0 && i == 2; f.hasBlob(l[1].Digest) != want {
					t.Errorf("orphan %d: its own layer present %v, want %v", i+1, f.hasBlob(l[1].Digest), want)
				}
			}
			if !strings.Contains(strings.Join(lines, "\n"), fmt.Sprintf("repositories: %d deleted, %d kept", wantDeleted, wantSkipped)) {
				t.Errorf("progress has no summary of the removal:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}
