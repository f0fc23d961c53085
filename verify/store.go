package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/dvcr/dvcr/storage"
)

// resultsPath is where the records live, next to the garbage collector's
// (/dvcr/gc/results.json), in the registry's storage.
const resultsPath = "/dvcr/verify/results.json"

// KeepResults is how many records the store keeps.
const KeepResults = 10

// ResultStore keeps the last KeepResults records in storage.
type ResultStore struct {
	records *storage.Records[Result]
}

// NewResultStore returns a store on the registry's storage driver.
func NewResultStore(driver storagedriver.StorageDriver) *ResultStore {
	return &ResultStore{records: &storage.Records[Result]{
		Driver: driver, Path: resultsPath, Keep: KeepResults, What: "verify results",
	}}
}

// List returns the records, newest first.
func (s *ResultStore) List(ctx context.Context) ([]Result, error) { return s.records.List(ctx) }

// Add records a run, dropping the oldest beyond KeepResults. An unreadable
// store is replaced rather than blocking every later record.
func (s *ResultStore) Add(ctx context.Context, r Result) error { return s.records.Add(ctx, r) }

// stamp tells whether the records file changed since it was read.
type stamp struct {
	size    int64
	modTime time.Time
}

func (a stamp) same(b stamp) bool { return a.size == b.size && a.modTime.Equal(b.modTime) }

// stamp is the size and modification time of the records file; zero when
// there is none.
func (s *ResultStore) stamp(ctx context.Context) (stamp, error) {
	fi, err := s.records.Driver.Stat(ctx, resultsPath)
	if err != nil {
		var nf storagedriver.PathNotFoundError
		if errors.As(err, &nf) {
			return stamp{}, nil
		}
		return stamp{}, fmt.Errorf("reading verify results: %w", err)
	}
	return stamp{size: fi.Size(), modTime: fi.ModTime()}, nil
}
