// The deletion mode: when and how a run deletes what it decided, chosen
// once at the start of the run from what the collector was given, and
// passed down. The rules of doc.go ("The short window") are written here as
// code; nothing else tells the modes apart by which fields are nil.

package gc

// storageKind is how the run's storage deletes a path. A blob is deleted
// by removeBlob (blobremove.go) on the first two kinds, inside the window
// and after it alike, and by deleteBlobObjects (objects.go) on the third.
type storageKind int

const (
	// storeInPlace deletes each path with one driver Delete: the inmemory
	// driver, and any driver that neither renames cheaply nor is S3.
	storeInPlace storageKind = iota
	// storeTrash moves each path into the run's trash by one rename, the
	// trash being emptied as it fills (trash.go, emptier.go): the
	// filesystem driver.
	storeTrash
	// storeObjects deletes files a thousand keys per request
	// (storage.ObjectDeleter): S3, where a move is a copy.
	storeObjects
)

// deletionMode is when and how a run deletes.
type deletionMode struct {
	// condemned, when not nil, is the registry's set: the blobs and
	// untagged manifests condemned inside the window are deleted after it
	// (deferred.go). nil deletes everything inside the window.
	condemned CondemnedSet
	storage   storageKind
}

// deletionMode chooses the run's mode. Called once per run: Replicas is
// set by dvcr serve after NewCollector.
func (c *Collector) deletionMode() deletionMode {
	return deletionMode{condemned: c.condemnedSet(), storage: c.storageKind()}
}

// condemnedSet is the set a run defers its deletions to, or nil.
func (c *Collector) condemnedSet() CondemnedSet {
	switch {
	case c.Live == nil:
		// Offline: no registry answers for what is condemned.
		return nil
	case c.Replicas != nil:
		// Several replicas: another process would not answer for the set.
		return nil
	default:
		// dvcr serve alone on its storage; nil when its registry keeps no
		// set, which makes every run delete inside the window.
		return c.Live.Condemned
	}
}

// storageKind is how the collector's storage deletes a path.
func (c *Collector) storageKind() storageKind {
	switch {
	case detachable(c.Driver):
		// A rename costs no freeing of space inside the window.
		return storeTrash
	case c.Objects != nil:
		// Batches: one request per thousand keys, not one per path.
		return storeObjects
	default:
		return storeInPlace
	}
}

// objectStoreConcurrency is the number of parallel driver calls on object
// storage, where each call is a network round trip rather than a system
// call: more of them in flight hide the latency.
const objectStoreConcurrency = 32

// concurrency is the parallelism of the sweep's driver calls: the sweep's
// default (0) on the filesystem, more on object storage.
func (k storageKind) concurrency() int {
	if k == storeObjects {
		return objectStoreConcurrency
	}
	return 0
}

// removeConcurrency is how many repositories are removed at once: removal
// is a handful of metadata operations each, bound by storage latency; on
// object storage each is a round trip, and more of them in flight hide it.
func (k storageKind) removeConcurrency() int {
	if k == storeObjects {
		return objectStoreConcurrency
	}
	return 8
}
