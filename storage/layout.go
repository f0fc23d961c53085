package storage

import (
	"path"

	"github.com/opencontainers/go-digest"
)

// The paths below follow distribution's storage layout
// (registry/storage/paths.go upstream). They are spelled out here, in one
// place, because distribution does not export them and the garbage collector
// and the repository removal walk storage through the driver directly.

// repositoriesRoot is where the layout keeps repositories.
const repositoriesRoot = "/docker/registry/v2/repositories"

// BlobsRoot is where the layout keeps blobs: <alg>/<2 hex>/<hex>/data.
const BlobsRoot = "/docker/registry/v2/blobs"

// RepositoryDir is the storage path of a repository.
func RepositoryDir(repoPath string) string {
	return path.Join(repositoriesRoot, path.Clean("/"+repoPath))
}

// BlobDir is the directory of blob d; deleting it deletes the blob.
func BlobDir(d digest.Digest) string {
	hex := d.Encoded()
	return path.Join(BlobsRoot, string(d.Algorithm()), hex[:2], hex)
}

// BlobData is the file holding the content of blob d.
func BlobData(d digest.Digest) string { return path.Join(BlobDir(d), "data") }

// RevisionLink is the link that makes manifest d part of repository repo.
func RevisionLink(repo string, d digest.Digest) string {
	return path.Join(RepositoryDir(repo), "_manifests", "revisions", string(d.Algorithm()), d.Encoded(), "link")
}
