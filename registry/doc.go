// Package registry embeds the distribution registry as a library and adds
// what DVCR needs around it: the write gate that switches the registry
// read-only at runtime (for garbage collection) without a restart, the
// repository name policy (cvi/, vi/<ns>/, vd/<ns>/), and a way to drop the
// registry's blob descriptor cache after blobs were deleted underneath it.
package registry
