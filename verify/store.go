package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// resultsPath is where the records live, next to the garbage collector's
// (/dvcr/gc/results.json), in the registry's storage.
const resultsPath = "/dvcr/verify/results.json"

// KeepResults is how many records the store keeps.
const KeepResults = 10

// ResultStore keeps the last KeepResults records in storage.
type ResultStore struct {
	driver storagedriver.StorageDriver
	mu     sync.Mutex
}

// NewResultStore returns a store on the registry's storage driver.
func NewResultStore(driver storagedriver.StorageDriver) *ResultStore {
	return &ResultStore{driver: driver}
}

// List returns the records, newest first.
func (s *ResultStore) List(ctx context.Context) ([]Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.load(ctx)
}

func (s *ResultStore) load(ctx context.Context) ([]Result, error) {
	data, err := s.driver.GetContent(ctx, resultsPath)
	if err != nil {
		var nf storagedriver.PathNotFoundError
		if errors.As(err, &nf) {
			return []Result{}, nil
		}
		return nil, fmt.Errorf("reading verify results: %w", err)
	}
	var out []Result
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("reading verify results %s: %w", resultsPath, err)
	}
	return out, nil
}

// Add records a run, dropping the oldest beyond KeepResults. An unreadable
// store is replaced rather than blocking every later record.
func (s *ResultStore) Add(ctx context.Context, r Result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.load(ctx)
	if err != nil {
		list = nil
	}
	list = append([]Result{r}, list...)
	if len(list) > KeepResults {
		list = list[:KeepResults]
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding verify results: %w", err)
	}
	// Written aside, then moved in place: a crash while writing leaves the
	// previous records whole.
	if err := s.driver.PutContent(ctx, resultsPath+".new", data); err != nil {
		return fmt.Errorf("writing verify results: %w", err)
	}
	if err := s.driver.Move(ctx, resultsPath+".new", resultsPath); err != nil {
		return fmt.Errorf("writing verify results: %w", err)
	}
	return nil
}
