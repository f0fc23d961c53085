package gc

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/registry"
)

// fakeLive is a registry reduced to its write gate; it counts cache resets.
type fakeLive struct {
	gate   *registry.Gate
	resets atomic.Int32
}

func (f *fakeLive) Gate() *registry.Gate { return f.gate }
func (f *fakeLive) ResetCaches() error   { f.resets.Add(1); return nil }

// listerFunc adapts a function to Lister.
type listerFunc func(ctx context.Context) (*ClusterInventory, error)

func (f listerFunc) List(ctx context.Context) (*ClusterInventory, error) { return f(ctx) }

func newTestCollector(lister Lister) (*Collector, *fakeLive) {
	live := &fakeLive{gate: registry.NewGate(time.Second)}
	driver := inmemory.New()
	return &Collector{
		Driver:    driver,
		NewLister: func() (Lister, error) { return lister, nil },
		Live:      live,
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
			return nil, listError(registry.KindCVI, errors.New("connection refused"))
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
