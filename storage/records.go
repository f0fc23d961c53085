package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// Records keeps the last Keep records of one kind (the garbage collector's
// runs, the verifications) in one JSON file of the registry's storage,
// newest first, so that they survive restarts and follow the data (also on
// S3). The zero value is not usable; a Records must not be copied.
type Records[T any] struct {
	Driver storagedriver.StorageDriver
	Path   string
	Keep   int
	// What names the records in errors, such as "gc results".
	What string
	// BeforeMove, when set, runs between writing the new file aside and
	// moving it in place (a test's crash point).
	BeforeMove func()

	mu sync.Mutex
}

// List returns the records, newest first; none when the file is absent.
func (r *Records[T]) List(ctx context.Context) ([]T, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.load(ctx)
}

func (r *Records[T]) load(ctx context.Context) ([]T, error) {
	data, err := r.Driver.GetContent(ctx, r.Path)
	if err != nil {
		var nf storagedriver.PathNotFoundError
		if errors.As(err, &nf) {
			return []T{}, nil
		}
		return nil, fmt.Errorf("reading %s: %w", r.What, err)
	}
	var out []T
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", r.What, r.Path, err)
	}
	return out, nil
}

// Add records rec, dropping the oldest beyond Keep. An unreadable file is
// replaced rather than blocking every later record.
func (r *Records[T]) Add(ctx context.Context, rec T) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	list, err := r.load(ctx)
	if err != nil {
		list = nil
	}
	list = append([]T{rec}, list...)
	if len(list) > r.Keep {
		list = list[:r.Keep]
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", r.What, err)
	}
	// Written aside, then moved in place: a crash while writing leaves the
	// previous records whole.
	if err := r.Driver.PutContent(ctx, r.Path+".new", data); err != nil {
		return fmt.Errorf("writing %s: %w", r.What, err)
	}
	if r.BeforeMove != nil {
		r.BeforeMove()
	}
	if err := r.Driver.Move(ctx, r.Path+".new", r.Path); err != nil {
		return fmt.Errorf("writing %s: %w", r.What, err)
	}
	return nil
}
