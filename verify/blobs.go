package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// blobState is what the blob store holds for one digest.
type blobState struct {
	data    bool // the data file exists (else only the directory does)
	size    int64
	corrupt string // why the content does not match its digest; "" when it does
}

// listBlobs finds the blob directories, <alg>/<2 hex>/<hex>, and the size
// of their data files.
func (c *checker) listBlobs(ctx context.Context) error {
	algorithms, err := c.driver.List(ctx, storage.BlobsRoot)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("listing blobs: %w", err)
	}
	sort.Strings(algorithms)
	for _, alg := range algorithms {
		if !digest.Algorithm(path.Base(alg)).Available() {
			continue
		}
		prefixes, err := c.list(ctx, alg)
		if err != nil {
			return err
		}
		for _, prefix := range prefixes {
			if err := c.listPrefix(ctx, path.Base(alg), prefix); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *checker) listPrefix(ctx context.Context, alg, prefix string) error {
	dirs, err := c.list(ctx, prefix)
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), path.Base(dir))
		if d.Validate() != nil || storage.BlobDir(d) != dir {
			continue
		}
		st := &blobState{}
		fi, err := c.driver.Stat(ctx, storage.BlobData(d))
		switch {
		case err == nil:
			st.data, st.size = true, fi.Size()
			c.totalBytes += fi.Size()
		case !isNotFound(err):
			return fmt.Errorf("reading blob %s: %w", d, err)
		}
		c.blobs[d] = st
		c.order = append(c.order, d)
	}
	return nil
}

// list lists a directory, sorted; a directory gone meanwhile is empty.
func (c *checker) list(ctx context.Context, dir string) ([]string, error) {
	entries, err := c.driver.List(ctx, dir)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	sort.Strings(entries)
	return entries, nil
}

// hashBlobs re-reads every blob with data and compares its content with
// its digest.
func (c *checker) hashBlobs(ctx context.Context) error {
	for _, d := range c.order {
		st := c.blobs[d]
		if !st.data {
			continue
		}
		if err := c.hashBlob(ctx, d, st); err != nil {
			return err
		}
		c.res.BlobsChecked++
	}
	return nil
}

// hashBlob streams one blob through its digest's hash. A blob that cannot
// be read to its end is corrupt; only a cancelled run is an error.
func (c *checker) hashBlob(ctx context.Context, d digest.Digest, st *blobState) error {
	r, err := c.driver.Reader(ctx, storage.BlobData(d), 0)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if isNotFound(err) {
			// Deleted since the listing (a collection): absent, not corrupt.
			st.data = false
			return nil
		}
		st.corrupt = "cannot be read: " + err.Error()
		return nil
	}
	defer r.Close()
	digester := d.Algorithm().Digester()
	n, err := io.Copy(digester.Hash(), c.progress.reader(limitReader(ctx, r, c.limiter)))
	c.res.BytesRead += n
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("reading blob %s: %w", d, ctx.Err())
	case err != nil:
		st.corrupt = fmt.Sprintf("reading failed after %d bytes: %v", n, err)
	case digester.Digest() != d:
		st.corrupt = fmt.Sprintf("content of %d bytes hashes to %s", n, digester.Digest())
	}
	st.size = n
	return nil
}

func isNotFound(err error) bool {
	var pnf storagedriver.PathNotFoundError
	return errors.As(err, &pnf)
}
