// Package gc is DVCR's garbage collector: the inventory of live resources in
// the cluster, the pure selection of images eligible for cleanup, the
// executor that removes them inside the registry's read-only window, the
// mark and sweep of manifests and blobs no repository keeps (sweep.go and the
// files of its phases: mark, scan, manifest, untagged, blobsweep), the
// scheduler, and the reports of what was found and done.
//
// # The short window
//
// Writes are refused only while a run decides what goes; deleting comes
// after. In dvcr serve with no other replica on its storage (deferred.go,
// condemn.go), a run lists the blobs, starts recording the repositories
// that writes touch (registry.WriteTracker), lists the repositories and the
// cluster and marks every repository that stays, all with the registry
// writable. Inside the window it lists the cluster again, marks again only
// the repositories written since the recording began (every repository if
// a write could not be attributed), removes the orphans (renames into the
// run's trash on the filesystem), and publishes the condemned blobs and
// untagged manifests to the registry (registry.Condemned). Once writable
// again, the registry answers for them as if they were gone (404, no mount
// from them, a manifest referencing one refused) while the run deletes
// them, each claimed so that an upload of the same content wins; then the
// caches are dropped and the set cleared.
//
// Why this is safe, in three sentences. (1) A repository that no write
// touched between the mark ahead and the window holds exactly what was
// marked, every other one is marked inside the window with writes drained
// and refused, so the condemned set is what a mark inside the window would
// condemn. (2) From the end of the window until it is deleted, no request
// can read, mount or reference a condemned entry, and the only way back is
// writing its content again, which takes it out of the set under the same
// lock as its deletion, so no manifest accepted after the window references
// something deleted. (3) The set is in memory: a crash loses it and leaves
// unreferenced content that the next run collects, and a restarted process
// has no cache describing what went.
//
// With several replicas (another process would not answer for the set),
// and offline, the run deletes inside the window: on the filesystem driver
// every deletion is a move into the run's trash (/dvcr/gc/trash/<run>,
// outside distribution's /docker/registry/v2), emptied as it fills, by two
// workers while the window is open and by sixteen once the registry is
// writable; on object stores, where a move is a copy, in place. Everything
// moved was condemned by a mark made with writes drained and refused, the
// moves are atomic renames, and the caches are dropped before the window
// ends, so deleting the trash at any time later changes nothing a client
// can see.
//
// Which of these a run does, and how its storage deletes a path (a move
// into the trash, batches on S3, or the driver's Delete), is chosen once at
// the start of the run (mode.go) and passed down.
//
// # Imports in progress
//
// An import commits its blobs, then writes its manifest and tag in one
// request. Between the two no manifest references the blobs, so the mark
// does not keep them; a run then would take them from under the import,
// whose manifest is refused (MANIFEST_BLOB_UNKNOWN). Whatever the grace
// period, a run deletes no blob that a repository that stays links by a
// link written no earlier than the repository's tags last moved, within
// UploadingAge (uploading.go); the repository of a live resource is marked
// even before its first manifest, when storage does not list it yet
// (select.go).
//
// Why this is safe. (1) Committing or mounting a blob writes the
// repository's layer link, so until the import's last request its blobs
// are linked no earlier than the tag moved; that request moves the tag and
// references them at once, and writes in flight are drained before any
// decision, so no decision sees the tag moved without the manifest. (2)
// The check is made where the deletions are decided, with writes drained
// and refused: inside the window (mark and sweep in the window; condemn in
// the deferred run). A commit before the mark ahead scanned the repository
// is in that scan, one after it makes the repository written and marked
// again inside the window, and link and tag times are read inside the
// window. (3) A commit after the decision either writes a blob the listing
// did not see (not condemned) or writes condemned content again, which
// resurrects it (registry.Condemned); in the window modes it writes after
// the deletion. What it keeps: the blobs of an import that never wrote its
// manifest, until its repository's tag moves (the next import succeeds) or
// UploadingAge passes, or the resource goes.
//
// # Crash safety
//
// A run keeps a marker (/dvcr/gc/running.json, with its phase) and, before
// removing repositories, a journal of them (/dvcr/gc/journal/<run>.json).
// Records are written aside and moved in place. At start, before taking
// requests, dvcr serve (or an offline run) records a run whose marker is
// left as failed with reason "interrupted", finishes the repositories of a
// journal left half removed (a legacy vi/<name> whose _manifests went but
// not its _layers), and frees the trash in the background. Anything else an
// interrupted run did not reach is still unreferenced, and the next run
// collects it. The fault points of fault.go stop the process at each phase
// to test this.
//
// # Where things are
//
// Deciding what goes reads storage and the cluster and deletes nothing:
//
//	cluster.go              the inventory of live resources (paged lists)
//	select.go, diff.go      which repositories are eligible, which are marked
//	orphans.go, uploading.go  the grace period; imports in progress
//	mark.go, scan.go, manifest.go  what each repository keeps
//	deferred.go             the mark ahead and the final choice (settle)
//	check.go                gc check: the decision, reported
//
// Carrying it out deletes, with the registry read-only or after it:
//
//	collector.go            a run: its phases and the read-only window
//	mode.go                 when and where the run deletes (one value)
//	sweep.go, blobsweep.go, untagged.go  the sweep of what the mark left
//	blobremove.go, objects.go  deleting one blob (by path; on S3 in batches)
//	condemn.go              the condemned set, deleted after the window
//	removal.go, orphanobjects.go  removing whole repositories
//	trash.go, emptier.go    the filesystem's trash and its emptying
//	state.go, recover.go, reserve.go  marker, journal, recovery, a full volume
//	result.go, metrics.go, progress.go  records, metrics, progress lines
package gc
