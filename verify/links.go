package verify

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// layerLink is the link that makes blob d a layer (or config) of repo.
func layerLink(repo string, d digest.Digest) string {
	return path.Join(storage.RepositoryDir(repo), "_layers", string(d.Algorithm()), d.Encoded(), "link")
}

// linkProblem reads the link file at p, which should name want.
func (c *checker) linkProblem(ctx context.Context, p string, want digest.Digest) *Problem {
	got, problem := c.readLink(ctx, p)
	if problem != "" {
		return &Problem{Blob: want, Problem: ProblemDanglingLink, Detail: problem}
	}
	if got != want {
		return &Problem{Blob: want, Problem: ProblemDanglingLink, Detail: fmt.Sprintf("link %s names %s", p, got)}
	}
	return nil
}

// readLink reads the digest a link file names, or says why it cannot.
func (c *checker) readLink(ctx context.Context, p string) (digest.Digest, string) {
	content, err := c.driver.GetContent(ctx, p)
	switch {
	case isNotFound(err):
		return "", "no link file " + p
	case err != nil:
		return "", fmt.Sprintf("link %s unreadable: %v", p, err)
	}
	d, err := digest.Parse(strings.TrimSpace(string(content)))
	if err != nil {
		return "", fmt.Sprintf("link %s does not hold a digest (%q): %v", p, truncate(string(content), 80), err)
	}
	return d, ""
}

// blobProblem classifies blob d as the blob store holds it; size is the
// size a manifest's descriptor gives it (0: unknown).
func (c *checker) blobProblem(d digest.Digest, size int64) *Problem {
	st, ok := c.blobs[d]
	switch {
	case !ok:
		return &Problem{Blob: d, Problem: ProblemDanglingLink, Detail: "no blob directory " + storage.BlobDir(d)}
	case !st.data:
		return &Problem{Blob: d, Problem: ProblemMissing, Detail: "no data file " + storage.BlobData(d)}
	case size > 0 && st.size < size:
		return &Problem{Blob: d, Problem: ProblemTruncated, Detail: fmt.Sprintf("%d bytes where the manifest says %d", st.size, size)}
	case st.corrupt != "":
		return &Problem{Blob: d, Problem: ProblemCorrupt, Detail: st.corrupt}
	}
	return nil
}

// linkedBlob checks a link to d and then d itself; the problems found.
func (c *checker) linkedBlob(ctx context.Context, link string, d digest.Digest, size int64) []Problem {
	var out []Problem
	c.linked[d] = true
	if p := c.linkProblem(ctx, link, d); p != nil {
		out = append(out, *p)
	}
	if p := c.blobProblem(d, size); p != nil {
		out = append(out, *p)
	}
	return out
}

// linkDigests lists <root>/<alg>/<hex>/link files: the digests they are
// filed under, with their paths.
func (c *checker) linkDigests(ctx context.Context, root string) (map[digest.Digest]string, error) {
	out := map[digest.Digest]string{}
	algs, err := c.list(ctx, root)
	if err != nil {
		return nil, err
	}
	for _, alg := range algs {
		dirs, err := c.list(ctx, alg)
		if err != nil {
			return nil, err
		}
		for _, dir := range dirs {
			d := digest.NewDigestFromEncoded(digest.Algorithm(path.Base(alg)), path.Base(dir))
			if d.Validate() == nil {
				out[d] = path.Join(dir, "link")
			}
		}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
