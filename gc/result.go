package gc

import (
	"context"
	"errors"
	"fmt"
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
	records *storage.Records[Result]
}

// NewResultStore returns a store on the registry's storage driver.
func NewResultStore(driver storagedriver.StorageDriver) *ResultStore {
	return newResultStore(driver, nil)
}

// newResultStore is NewResultStore with fault, when not nil, called between
// writing the new records and putting them in place (fault.go).
func newResultStore(driver storagedriver.StorageDriver, fault func(string)) *ResultStore {
	r := &storage.Records[Result]{Driver: driver, Path: resultsPath, Keep: KeepResults, What: "gc results"}
	if fault != nil {
		r.BeforeMove = func() { fault(faultRecord) }
	}
	return &ResultStore{records: r}
}

// List returns the records, newest first.
func (s *ResultStore) List(ctx context.Context) ([]Result, error) { return s.records.List(ctx) }

// Add records a run, dropping the oldest beyond KeepResults. An unreadable
// store is replaced rather than blocking every later record.
func (s *ResultStore) Add(ctx context.Context, r Result) error { return s.records.Add(ctx, r) }
