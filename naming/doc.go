// Package naming is the vocabulary of DVCR's managed repositories: the
// resource kinds (cvi, vi, vd), the repository paths built from them, and the
// shortening of names that would not fit in an image reference. It is a leaf
// package (no HTTP registry, no storage driver) so that both the registry's
// name policy and the storage inventory can use it without depending on each
// other.
package naming
