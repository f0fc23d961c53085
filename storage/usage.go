package storage

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"golang.org/x/sys/unix"

	"github.com/dvcr/dvcr/config"
)

// Usage is the space of the volume holding the registry. On object storage
// (Unbounded) only Used is known: the bytes of the registry's blobs; a
// bucket has no fixed capacity, so Total and Available stay 0.
type Usage struct {
	Total     uint64 `json:"total"`
	Used      uint64 `json:"used"`
	Available uint64 `json:"available"`
	Unbounded bool   `json:"unbounded,omitempty"`
}

// UsedPercent is Used of Used+Available, as df computes Use%.
func (u Usage) UsedPercent() int {
	if u.Used+u.Available == 0 {
		return 0
	}
	return int((u.Used*100 + u.Used + u.Available - 1) / (u.Used + u.Available))
}

// StoreUsage is VolumeUsage for the filesystem driver and, for every other
// driver (S3), the bytes of the registry's blobs, counted by listing them.
func StoreUsage(ctx context.Context, cfg *config.Config, driver storagedriver.StorageDriver) (Usage, error) {
	if _, ok := FilesystemRoot(cfg); ok {
		return VolumeUsage(cfg)
	}
	used, err := BlobBytes(ctx, driver)
	if err != nil {
		return Usage{}, err
	}
	return Usage{Used: used, Unbounded: true}, nil
}

// BlobBytes sums the sizes of the registry's blob data: one listing of the
// blob tree (on S3, pages of a thousand objects with their sizes).
func BlobBytes(ctx context.Context, driver storagedriver.StorageDriver) (uint64, error) {
	var total uint64
	err := driver.Walk(ctx, BlobsRoot, func(fi storagedriver.FileInfo) error {
		if !fi.IsDir() && path.Base(fi.Path()) == "data" {
			total += uint64(max(fi.Size(), 0))
		}
		return nil
	})
	var notFound storagedriver.PathNotFoundError
	if errors.As(err, &notFound) {
		return 0, nil // an empty registry
	}
	if err != nil {
		return 0, fmt.Errorf("counting the bytes of the blobs: %w", err)
	}
	return total, nil
}

// VolumeUsage reports the space of the filesystem holding the storage root
// (statfs), for the filesystem driver.
func VolumeUsage(cfg *config.Config) (Usage, error) {
	root, ok := FilesystemRoot(cfg)
	if !ok {
		return Usage{}, ErrUsageUnknown
	}
	return volumeUsageAt(root)
}

// volumeUsageAt is the space of the filesystem holding the directory root.
func volumeUsageAt(root string) (Usage, error) {
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
