// Package gc is DVCR's garbage collector: the inventory of live resources in
// the cluster, the pure selection of images eligible for cleanup, the
// executor that removes them inside the registry's read-only window, the
// mark and sweep of manifests and blobs no repository keeps (sweep.go and the
// files of its phases: mark, scan, manifest, untagged, blobsweep), the
// scheduler, and the reports of what was found and done.
//
// # The short window
//
// Writes are refused only while a run decides what goes and takes it out of
// the registry's tree; the slow part, freeing the space, comes after. On
// the filesystem driver, which moves a directory by a rename, every
// deletion inside the window — a repository, an untagged manifest's
// revision link, a blob, a layer link — is a move into the run's trash
// (/dvcr/gc/trash/<run>, outside distribution's /docker/registry/v2), and
// the trash is emptied as it fills: by two workers while the window is
// open, by sixteen once the registry is writable again. On object stores a
// move is a copy (and the inmemory driver's moves are unreliable), so there
// the run deletes in place and the window lasts the whole run.
//
// Why this is safe: (1) everything moved was condemned by a mark made with
// writes drained and refused, so no manifest that exists when the window
// ends references it, exactly as if it had been deleted in the window; (2)
// the moves are renames within one filesystem, atomic, and the registry's
// caches are dropped before the window ends, so after it no request can
// reach a detached path, and a push of the same content writes a new blob
// at the canonical path that emptying the trash never touches; (3) the
// trash is reachable by no registry request, so deleting it at any time
// later, by this run, the next one, or a restart, changes nothing a client
// can see.
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
package gc
