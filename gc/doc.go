// Package gc is DVCR's garbage collector: the inventory of live resources in
// the cluster, the pure selection of images eligible for cleanup, the
// executor that removes them inside the registry's read-only window, the
// mark and sweep of manifests and blobs no repository keeps (sweep.go and the
// files of its phases: mark, scan, manifest, untagged, blobsweep), the
// scheduler, and the reports of what was found and done.
package gc
