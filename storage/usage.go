package storage

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/dvcr/dvcr/config"
)

// Usage is the space of the volume holding the registry.
type Usage struct {
	Total     uint64 `json:"total"`
	Used      uint64 `json:"used"`
	Available uint64 `json:"available"`
}

// UsedPercent is Used of Used+Available, as df computes Use%.
func (u Usage) UsedPercent() int {
	if u.Used+u.Available == 0 {
		return 0
	}
	return int((u.Used*100 + u.Used + u.Available - 1) / (u.Used + u.Available))
}

// VolumeUsage reports the space of the filesystem holding the storage root
// (statfs), for the filesystem driver.
func VolumeUsage(cfg *config.Config) (Usage, error) {
	root, ok := FilesystemRoot(cfg)
	if !ok {
		return Usage{}, ErrUsageUnknown
	}
	var st unix.Statfs_t
	// An empty registry may not have created its root yet: the space is
	// that of the volume it will be created on.
	dir := root
	for {
		err := unix.Statfs(dir, &st)
		if err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, unix.ENOENT) || parent == dir {
			return Usage{}, fmt.Errorf("statfs %s: %w", root, err)
		}
		dir = parent
	}
	bs := uint64(st.Bsize)
	return Usage{
		Total:     st.Blocks * bs,
		Used:      (st.Blocks - st.Bfree) * bs,
		Available: st.Bavail * bs,
	}, nil
}

// FilesystemRoot is the storage root directory of the filesystem driver;
// false for other drivers.
func FilesystemRoot(cfg *config.Config) (string, bool) {
	if cfg.Registry.Storage.Type() != "filesystem" {
		return "", false
	}
	root, _ := cfg.Registry.Storage.Parameters()["rootdirectory"].(string)
	if root == "" {
		root = "/var/lib/registry" // the filesystem driver's default
	}
	return root, true
}
