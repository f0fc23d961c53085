package verify

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	"golang.org/x/time/rate"

	"github.com/dvcr/dvcr/storage"
)

// Options tune a run.
type Options struct {
	// Rate limits the bytes read per second; 0 is unlimited.
	Rate int64
	// Trigger is recorded in the result: manual (default), schedule.
	Trigger string
	// Progress, when set, is told the bytes of blob data read so far and
	// the total to read, as the run goes.
	Progress func(done, total int64)
}

// checker is the state of one run.
type checker struct {
	driver     storagedriver.StorageDriver
	limiter    *rate.Limiter
	progress   progress
	res        *Result
	blobs      map[digest.Digest]*blobState
	order      []digest.Digest
	totalBytes int64
	manifests  map[digest.Digest][]storage.ManifestRef
	linked     map[digest.Digest]bool
}

// Run verifies the storage behind driver and changes nothing. The result
// is returned also when the run fails (Result "fail", Error set) along
// with the error.
func Run(ctx context.Context, driver storagedriver.StorageDriver, opts Options) (*Result, error) {
	trigger := opts.Trigger
	if trigger == "" {
		trigger = "manual"
	}
	c := &checker{
		driver:    driver,
		limiter:   newLimiter(opts.Rate),
		res:       &Result{Trigger: trigger, StartedAt: time.Now().UTC(), Images: []Image{}},
		blobs:     map[digest.Digest]*blobState{},
		manifests: map[digest.Digest][]storage.ManifestRef{},
		linked:    map[digest.Digest]bool{},
	}
	err := c.run(ctx, opts)
	c.res.FinishedAt = time.Now().UTC()
	switch {
	case err != nil:
		c.res.Result, c.res.Error = ResultFail, err.Error()
	case c.res.ImagesWithProblems() > 0 || len(c.res.Unreferenced) > 0:
		c.res.Result = ResultCorrupt
	default:
		c.res.Result = ResultOK
	}
	return c.res, err
}

func (c *checker) run(ctx context.Context, opts Options) error {
	if err := c.listBlobs(ctx); err != nil {
		return err
	}
	c.progress = progress{fn: opts.Progress, total: c.totalBytes}
	if err := c.hashBlobs(ctx); err != nil {
		return err
	}
	repos, err := storage.RepositoryPaths(ctx, c.driver)
	if err != nil {
		return err
	}
	for _, repo := range repos {
		if err := c.checkRepository(ctx, repo); err != nil {
			return fmt.Errorf("checking repository %s: %w", repo, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := c.settle(ctx); err != nil {
		return fmt.Errorf("re-reading what changed during the run: %w", err)
	}
	c.unreferenced()
	return nil
}

// unreferenced reports the corrupt blobs no repository links (a blob
// directory without data that nothing links harms nothing).
func (c *checker) unreferenced() {
	for _, d := range c.order {
		if c.linked[d] || !c.blobs[d].data {
			continue
		}
		if p := c.blobProblem(d, 0); p != nil {
			c.res.Unreferenced = append(c.res.Unreferenced, *p)
		}
	}
	sort.Slice(c.res.Unreferenced, func(i, j int) bool { return c.res.Unreferenced[i].Blob < c.res.Unreferenced[j].Blob })
}

// progress counts the bytes read for Options.Progress.
type progress struct {
	fn          func(done, total int64)
	done, total int64
}

func (p *progress) reader(r io.Reader) io.Reader {
	if p.fn == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.done += int64(n)
	r.p.fn(r.p.done, r.p.total)
	return n, err
}
