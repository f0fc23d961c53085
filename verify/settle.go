package verify

import (
	"context"
	"path"

	"github.com/dvcr/dvcr/storage"
)

// settle takes back what writes of the registry during the run made look
// wrong. Verify reads a live store, listing the blobs first and reading the
// repositories last, while imports and collections go on beside it: a blob
// an import committed after the listing looks absent, and an image a
// collection deleted looks broken half way. Neither is damage, and an
// alert on either would send an operator to re-import a sound image.
//
// An image whose tag (or, for links no tag reaches, whose repository) is
// gone now was deleted during the run and is dropped. A blob reported
// absent whose data exists now was written after the listing; this run
// cannot vouch for it, the next one checks it. Everything else stands: a
// collection deletes nothing a tag still references, so a blob a live tag
// names and that is still absent is missing.
func (c *checker) settle(ctx context.Context) error {
	kept := c.res.Images[:0]
	for _, img := range c.res.Images {
		if img.Status == StatusOK {
			kept = append(kept, img)
			continue
		}
		gone, err := c.imageGone(ctx, img)
		if err != nil {
			return err
		}
		if gone {
			continue
		}
		var problems []Problem
		for _, p := range img.Problems {
			later, err := c.writtenSinceListing(ctx, p)
			if err != nil {
				return err
			}
			if !later {
				problems = append(problems, p)
			}
		}
		img.Status, img.Problems, img.Action = StatusOK, nil, ""
		if len(problems) > 0 {
			img.Status, img.Problems, img.Action = StatusProblem, problems, actionFor(img)
		}
		kept = append(kept, img)
	}
	c.res.Images = kept
	return nil
}

// imageGone reports whether img's tag, or its repository for an untagged
// entry, no longer exists.
func (c *checker) imageGone(ctx context.Context, img Image) (bool, error) {
	dir := storage.RepositoryDir(img.Repository)
	if img.Tag != "" {
		dir = path.Join(dir, "_manifests", "tags", img.Tag)
	}
	_, err := c.driver.Stat(ctx, dir)
	if isNotFound(err) {
		return true, nil
	}
	return false, err
}

// writtenSinceListing reports whether p says a blob is absent that the
// listing did not see and that exists now.
func (c *checker) writtenSinceListing(ctx context.Context, p Problem) (bool, error) {
	if p.Blob == "" || (p.Problem != ProblemMissing && p.Problem != ProblemDanglingLink) {
		return false, nil
	}
	if st, listed := c.blobs[p.Blob]; listed && st.data {
		return false, nil
	}
	_, err := c.driver.Stat(ctx, storage.BlobData(p.Blob))
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
