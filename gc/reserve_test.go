package gc

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dvcr/dvcr/naming"
)

// TestRunOnFullVolume: on a tmpfs with no byte free, a run with the
// reserve deletes the orphan and records its result without a warning;
// without a reserve it still deletes, its records being warnings. The
// subtests with smaller reserves measure what a run needs (logged).
func TestRunOnFullVolume(t *testing.T) {
	tests := []struct {
		name      string
		reserve   int64
		wantClean bool // no warning: everything the run wrote fitted
	}{
		{name: "no reserve", reserve: 0},
		{name: "4KiB", reserve: 4 << 10},
		{name: "8KiB", reserve: 8 << 10},
		{name: "12KiB", reserve: 12 << 10},
		{name: "16KiB", reserve: 16 << 10},
		{name: "64KiB", reserve: 64 << 10},
		{name: "ReserveSize", reserve: ReserveSize, wantClean: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := reserveSize
			reserveSize = tt.reserve
			defer func() { reserveSize = saved }()
			vol := mountTmpfs(t, "8m")
			f := newSweepFixtureAt(t, vol)
			f.image("vi/ns/live", "latest", "shared", "live")
			m, _, _ := f.image("vi/ns/gone", "latest", "shared", string(make([]byte, 1<<20)))
			if tt.reserve > 0 {
				if err := EnsureReserve(vol); err != nil {
					t.Fatal(err)
				}
			}
			fill(t, vol)
			c, _ := newTestCollector(listerFunc(func(context.Context) (*ClusterInventory, error) {
				return &ClusterInventory{Resources: []Resource{{Kind: naming.KindVI, Namespace: "ns", Name: "live"}}}, nil
			}))
			c.Driver, c.Store, c.Now, c.FilesystemRoot = f.driver, NewResultStore(f.driver), later, vol
			res, err := c.Run(f.ctx, "manual", nil)
			if err != nil || f.hasRevision("vi/ns/gone", m.Digest) || res.Freed == 0 {
				t.Fatalf("run on a full volume: %v, freed %d, warnings %v", err, res.Freed, res.Warnings)
			}
			t.Logf("reserve %d bytes: freed %d, warnings %q", tt.reserve, res.Freed, res.Warnings)
			if tt.wantClean && len(res.Warnings) > 0 {
				t.Errorf("warnings with the reserve: %v", res.Warnings)
			}
		})
	}
}

func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount -t tmpfs (the test needs root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file outside the registry's tree until no byte is free.
func fill(t *testing.T, vol string) {
	t.Helper()
	file, err := os.Create(filepath.Join(vol, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := io.Copy(file, zeroReader{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the volume: %v", err)
	}
}
