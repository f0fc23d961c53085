package storage

import (
	"context"
	"fmt"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"

	// Storage drivers linked into DVCR (config.StorageDrivers).
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"

	"github.com/dvcr/dvcr/config"
)

// OpenDriver creates the storage driver the configuration names.
func OpenDriver(ctx context.Context, cfg *config.Config) (storagedriver.StorageDriver, error) {
	name := cfg.Registry.Storage.Type()
	d, err := factory.Create(ctx, name, cfg.Registry.Storage.Parameters())
	if err != nil {
		return nil, fmt.Errorf("storage.%s: %w", name, err)
	}
	return d, nil
}
