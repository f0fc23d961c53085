package storage

import (
	"context"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/storage/drivers"
)

// OpenDriver creates the storage driver the configuration names.
func OpenDriver(ctx context.Context, cfg *config.Config) (storagedriver.StorageDriver, error) {
	return drivers.Open(ctx, cfg.Registry.Storage)
}
