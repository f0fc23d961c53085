package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/dvcr/dvcr/admin"
	"github.com/dvcr/dvcr/registry"
	"github.com/dvcr/dvcr/storage"
)

// backend serves the admin endpoint from the running registry.
type backend struct {
	srv    *registry.Server
	driver storagedriver.StorageDriver
	gc     gcRunner
}

// gcRunner is the part of the garbage collector the admin endpoint drives.
type gcRunner interface {
	Running() bool
	Run(ctx context.Context, trigger string, progress func(string)) (json.RawMessage, error)
	Results(ctx context.Context) (json.RawMessage, error)
}

func (b *backend) Status(context.Context) admin.Status {
	return admin.Status{ReadOnly: b.srv.Gate().ReadOnly(), GCRunning: b.gc != nil && b.gc.Running(), Config: b.srv.Config().Source}
}

// DeleteRepository removes the repository and drops the registry's caches,
// which may still describe the repository's blobs.
func (b *backend) DeleteRepository(ctx context.Context, path string) error {
	if err := storage.RemoveRepository(ctx, b.driver, path); err != nil {
		if errors.Is(err, storage.ErrRepositoryNotFound) {
			return &admin.HTTPError{Status: http.StatusNotFound, Err: err}
		}
		return err
	}
	if err := b.srv.ResetCaches(); err != nil {
		return fmt.Errorf("repository %s removed, but resetting the registry caches failed: %w", path, err)
	}
	return nil
}

func (b *backend) RunGC(ctx context.Context, progress func(string)) (json.RawMessage, error) {
	if b.gc == nil {
		return nil, errors.New("garbage collection is not available in this server")
	}
	return b.gc.Run(ctx, "manual", progress)
}

func (b *backend) GCResults(ctx context.Context) (json.RawMessage, error) {
	if b.gc == nil {
		return json.RawMessage("[]"), nil
	}
	return b.gc.Results(ctx)
}
