package gc

import (
	"errors"
	"fmt"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// Sentinel errors of the gc package; test them with errors.Is.
var (
	// ErrClusterList: a resource kind could not be listed; nothing may be
	// deleted, since every image of that kind would look orphaned.
	ErrClusterList = errors.New("cannot list resources in the cluster")
	// ErrRunInProgress: a garbage collection run is already running.
	ErrRunInProgress = errors.New("a garbage collection run is already in progress")
	// ErrNotLeader: among replicas, runs happen on the leader only.
	ErrNotLeader = errors.New("this replica is not the leader, where garbage collection and deletions run")
	// ErrInvalidOptions: SweepOptions that cannot work together.
	ErrInvalidOptions = errors.New("invalid mark and sweep options")
)

// ListError says which kind could not be listed and why.
type ListError struct {
	Kind     string // Kubernetes kind, e.g. VirtualDisk
	Resource string // resource.group/version
	Reason   string // API server unreachable, forbidden, kind not installed, timeout, error
	Err      error
}

func (e *ListError) Error() string {
	return fmt.Sprintf("%s: listing %s (%s): %s: %v", ErrClusterList, e.Kind, e.Resource, e.Reason, e.Err)
}

// Unwrap lets errors.Is match both ErrClusterList and the cause.
func (e *ListError) Unwrap() []error { return []error{ErrClusterList, e.Err} }

func asPathNotFound(err error, target *storagedriver.PathNotFoundError) bool {
	return errors.As(err, target)
}
