package registry

import (
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
)

// Condemned is what a garbage collection run decided to delete, published
// at the end of its read-only window and deleted afterwards with the
// registry writable (condemnedguard.go answers for it meanwhile).
//
// Two kinds of entries: blobs (the data and every repository's layer link
// to it) and manifest revisions (an untagged manifest's link in one
// repository). An entry is pending until the collector claims and deletes
// it, then deleted until Clear; a successful upload or manifest PUT of the
// same content takes it out of the set at once (it is resurrected). While an
// entry is in the set, the registry behaves as if it were already gone.
type Condemned struct {
	active atomic.Bool

	mu        sync.Mutex
	blobs     map[digest.Digest]*condemnedEntry
	revisions map[revisionKey]*condemnedEntry
}

type revisionKey struct {
	repo string
	d    digest.Digest
}

// condemnedEntry serializes the deletion of one entry with the uploads that
// would bring it back: both hold mu.
type condemnedEntry struct {
	mu          sync.Mutex
	deleted     bool
	resurrected bool
}

// Publish makes blobs and revisions (repository path -> manifest digests)
// condemned. It replaces what an earlier run published.
func (c *Condemned) Publish(blobs []digest.Digest, revisions map[string][]digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blobs = make(map[digest.Digest]*condemnedEntry, len(blobs))
	for _, d := range blobs {
		c.blobs[d] = &condemnedEntry{}
	}
	c.revisions = make(map[revisionKey]*condemnedEntry)
	for repo, ds := range revisions {
		for _, d := range ds {
			c.revisions[revisionKey{repo, d}] = &condemnedEntry{}
		}
	}
	c.active.Store(true)
}

// Clear empties the set: call it once every entry is deleted and the
// registry's caches were dropped.
func (c *Condemned) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active.Store(false)
	c.blobs, c.revisions = nil, nil
}

// Active reports whether a published set is being deleted.
func (c *Condemned) Active() bool { return c.active.Load() }

// ClaimBlob locks blob d for deletion. ok is false when d is no longer
// pending (resurrected, or not condemned); otherwise the caller deletes it
// and calls release with whether it is gone.
func (c *Condemned) ClaimBlob(d digest.Digest) (release func(deleted bool), ok bool) {
	c.mu.Lock()
	e := c.blobs[d]
	c.mu.Unlock()
	return c.claim(e)
}

// ClaimRevision is ClaimBlob for manifest d's revision in repo.
func (c *Condemned) ClaimRevision(repo string, d digest.Digest) (release func(deleted bool), ok bool) {
	c.mu.Lock()
	e := c.revisions[revisionKey{repo, d}]
	c.mu.Unlock()
	return c.claim(e)
}

func (c *Condemned) claim(e *condemnedEntry) (func(bool), bool) {
	if e == nil {
		return nil, false
	}
	e.mu.Lock()
	if e.deleted || e.resurrected {
		e.mu.Unlock()
		return nil, false
	}
	return func(deleted bool) {
		e.deleted = deleted
		e.mu.Unlock()
	}, true
}

// blob is blob d's entry, nil when it is not condemned.
func (c *Condemned) blob(d digest.Digest) *condemnedEntry {
	if !c.active.Load() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blobs[d]
}

// revision is the entry of manifest d's revision in repo, nil when it is
// not condemned.
func (c *Condemned) revision(repo string, d digest.Digest) *condemnedEntry {
	if !c.active.Load() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revisions[revisionKey{repo, d}]
}

// resurrect takes the entries out of the set: their content was written
// again and must stay. The caller holds the entries' locks.
func (c *Condemned) resurrect(blob digest.Digest, repo string, revision digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.blobs[blob]; e != nil {
		e.resurrected = true
		delete(c.blobs, blob)
	}
	key := revisionKey{repo, revision}
	if e := c.revisions[key]; e != nil {
		e.resurrected = true
		delete(c.revisions, key)
	}
}
