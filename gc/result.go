package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/dvcr/dvcr/storage"
	"github.com/dvcr/dvcr/units"
)

// Result values.
const (
	ResultSuccess = "success"
	ResultFail    = "fail"
)

// Result is the record of one garbage collection run.
type Result struct {
	Result     string    `json:"result"`
	Trigger    string    `json:"trigger"` // schedule, manual, auto-cleanup
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	Total      uint64    `json:"total"`
	Available  uint64    `json:"available"`
	// Used and Unbounded: on object storage (Unbounded) the bytes of the
	// blobs after the run; Total and Available are 0 there.
	Used      uint64 `json:"used,omitempty"`
	Unbounded bool   `json:"unbounded,omitempty"`
	Freed     int64  `json:"freed"`
	Message   string `json:"message"`
	Error     string `json:"error,omitempty"`
	// Reason is "interrupted" for a run the process did not survive.
	Reason          string          `json:"reason,omitempty"`
	Deleted         []EligibleImage `json:"deleted"`
	Skipped         []EligibleImage `json:"skipped,omitempty"` // eligible but modified within the grace period
	ReadOnlySeconds float64         `json:"readOnlySeconds"`
	// FreedAt is when the space of what the run deleted was freed: after
	// the read-only window, which only decides and detaches.
	FreedAt  *time.Time  `json:"freedAt,omitempty"`
	Sweep    *SweepStats `json:"sweep,omitempty"`
	Warnings []string    `json:"warnings,omitempty"`
}

// Succeeded reports whether the run succeeded.
func (r *Result) Succeeded() bool { return r.Result == ResultSuccess }

// FreedMessage is the documented one-line summary. On object storage,
// which has no capacity to be available of, it gives the bytes used.
func FreedMessage(r *Result) string {
	freed := uint64(max(r.Freed, 0))
	if r.Unbounded {
		return fmt.Sprintf("Freed space after cleanup: %s. Used space %s (object storage: no fixed capacity).",
			units.FormatBytes(freed), units.FormatBytes(r.Used))
	}
	return fmt.Sprintf("Freed space after cleanup: %s. Available space %s of total %s.",
		units.FormatBytes(freed), units.FormatBytes(r.Available), units.FormatBytes(r.Total))
}

// fillUsage copies the store's space figures into the record; a failed
// measurement leaves them 0 and is noted as a warning.
func (c *Collector) fillUsage(ctx context.Context, r *Result) {
	if c.Usage == nil {
		return
	}
	u, err := c.Usage(ctx)
	if err != nil {
		if !errors.Is(err, storage.ErrUsageUnknown) {
			r.Warnings = append(r.Warnings, "measuring the storage's space: "+err.Error())
		}
		return
	}
	r.Total, r.Available, r.Used, r.Unbounded = u.Total, u.Available, u.Used, u.Unbounded
}

// resultsPath is where the records live in the registry's storage, so that
// they survive restarts and follow the data (also on S3).
const resultsPath = "/dvcr/gc/results.json"

// KeepResults is how many records the store keeps.
const KeepResults = 10

// ResultStore keeps the last KeepResults records in storage.
type ResultStore struct {
	driver storagedriver.StorageDriver
	mu     sync.Mutex
	// fault, when not nil, is called between writing the new records and
	// putting them in place (fault.go).
	fault func(string)
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
		if asPathNotFound(err, &nf) {
			return []Result{}, nil
		}
		return nil, fmt.Errorf("reading gc results: %w", err)
	}
	var out []Result
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("reading gc results %s: %w", resultsPath, err)
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
		return err
	}
	// Written aside, then moved in place: a crash while writing leaves the
	// previous records whole.
	if err := s.driver.PutContent(ctx, resultsPath+".new", data); err != nil {
		return fmt.Errorf("writing gc results: %w", err)
	}
	if s.fault != nil {
		s.fault(faultRecord)
	}
	if err := s.driver.Move(ctx, resultsPath+".new", resultsPath); err != nil {
		return fmt.Errorf("writing gc results: %w", err)
	}
	return nil
}
