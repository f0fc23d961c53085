package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/dvcr/dvcr/admin"
	"github.com/dvcr/dvcr/cluster"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/registry"
	"github.com/dvcr/dvcr/storage"
)

// backend serves the admin endpoint from the running registry.
type backend struct {
	// ctx is the server's lifetime: runs started through the admin
	// endpoint end with the server, not with the CLI that asked for them.
	ctx       context.Context
	srv       *registry.Server
	driver    storagedriver.StorageDriver
	collector *gc.Collector
	// elector is set for replicas (dvcr.cluster): runs happen on the leader.
	elector   *cluster.Elector
	namespace string
}

func (b *backend) Status(context.Context) admin.Status {
	return admin.Status{ReadOnly: b.srv.Gate().ReadOnly(), GCRunning: b.collector.Running(), Config: b.srv.Config().Source}
}

// DeleteRepository removes the repository and drops the registry's caches,
// which may still describe the repository's blobs.
func (b *backend) DeleteRepository(ctx context.Context, path string) error {
	if err := b.onLeader(); err != nil {
		return err
	}
	if err := b.collector.RemoveRepository(ctx, path); err != nil {
		if errors.Is(err, storage.ErrRepositoryNotFound) {
			return &admin.HTTPError{Status: http.StatusNotFound, Err: err}
		}
		if errors.Is(err, gc.ErrRunInProgress) {
			return &admin.HTTPError{Status: http.StatusConflict, Err: err}
		}
		return err
	}
	if err := b.srv.ResetCaches(); err != nil {
		return fmt.Errorf("repository %s removed, but resetting the registry caches failed: %w", path, err)
	}
	return nil
}

func (b *backend) RunGC(_ context.Context, trigger string, progress func(string)) (json.RawMessage, error) {
	if err := b.onLeader(); err != nil {
		return nil, err
	}
	res, err := b.collector.Run(b.ctx, trigger, progress)
	if errors.Is(err, gc.ErrRunInProgress) {
		return nil, err
	}
	raw, mErr := json.Marshal(res)
	if mErr != nil {
		return nil, mErr
	}
	return raw, err
}

func (b *backend) GCResults(ctx context.Context) (json.RawMessage, error) {
	list, err := b.collector.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(list)
}

// onLeader refuses, naming the pod to exec into, what among replicas only
// the leader does: garbage collection and deletions, which need every
// replica to refuse writes meanwhile.
func (b *backend) onLeader() error {
	if b.elector == nil || b.elector.IsLeader() {
		return nil
	}
	leader := b.elector.Leader()
	if leader == "" {
		return &admin.HTTPError{Status: http.StatusConflict, Err: fmt.Errorf("%w: no replica leads yet (Lease %s in namespace %s); try again in a few seconds", gc.ErrNotLeader, cluster.LeaderLease, b.namespace)}
	}
	return &admin.HTTPError{Status: http.StatusConflict, Err: fmt.Errorf("%w: it runs on replica %s; run it there: kubectl -n %s exec %s -- dvcr-cleaner ...",
		gc.ErrNotLeader, leader, b.namespace, leader)}
}
