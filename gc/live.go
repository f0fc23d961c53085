package gc

import (
	"context"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/registry"
)

// Live is the registry of this process (dvcr serve) as a run uses it: the
// collector switches it read-only, has it answer for what is deleted after
// the window, and drops its caches after deleting. dvcr serve builds it
// from its *registry.Server.
type Live struct {
	Gate Gate
	// Condemned answers for the blobs and manifests a run deletes after its
	// window; nil makes every run delete inside it.
	Condemned CondemnedSet
	// ResetCaches drops the registry's caches, which may describe what a
	// run deleted.
	ResetCaches func() error
	// Driver is the registry's storage driver, which the collector shares
	// (an inmemory store exists once per driver); nil opens one.
	Driver storagedriver.StorageDriver
}

// Gate is the registry's write gate as a run uses it (*registry.Gate):
// Enter refuses writes and waits for those in flight; TrackWrites records
// the repositories that writes touch until it is stopped.
type Gate interface {
	Enter(ctx context.Context, reason string, drainTimeout time.Duration) (*registry.Hold, error)
	TrackWrites() *registry.WriteTracker
}

// CondemnedSet is the registry's side of a deferred deletion
// (*registry.Condemned): published at the end of the window, each entry
// claimed while it is deleted (an upload of the same content wins), cleared
// once the caches are dropped.
type CondemnedSet interface {
	Publish(blobs []digest.Digest, revisions map[string][]digest.Digest)
	ClaimBlob(d digest.Digest) (release func(deleted bool), ok bool)
	ClaimRevision(repo string, d digest.Digest) (release func(deleted bool), ok bool)
	Clear()
}
