// Package verify checks the registry's storage without changing it: every
// blob under /docker/registry/v2/blobs is re-read and its digest compared
// with its name, every repository's layer, manifest revision and tag links
// are read, and every tagged manifest is parsed to check that what it
// references is linked in its repository and present in the blob store. It
// works through the distribution storage driver, so on the filesystem and
// on S3 alike, and reports per image (repository and tag): ok, or the
// problems found with the digests of the blobs concerned.
package verify
