package admin

import (
	"context"
	"encoding/json"
)

// API paths.
const (
	PathStatus       = "/v1/status"
	PathRepositories = "/v1/repositories/" // + repository path, DELETE
	PathGCRun        = "/v1/gc/run"        // POST, streams Events
	PathGCResults    = "/v1/gc/results"    // GET
)

// Status is what GET /v1/status answers.
type Status struct {
	ReadOnly  bool   `json:"readOnly"`
	GCRunning bool   `json:"gcRunning"`
	Config    string `json:"config"`
}

// Event is one line of a streamed response: progress while a run works,
// then exactly one of Result (raw JSON of the run's record) or Error.
type Event struct {
	Progress string          `json:"progress,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// Backend is what the admin endpoint serves; dvcr serve implements it.
type Backend interface {
	Status(ctx context.Context) Status
	// DeleteRepository removes one repository (its blobs stay until the
	// next garbage collection run).
	DeleteRepository(ctx context.Context, path string) error
	// RunGC runs garbage collection now, reporting progress lines; the
	// result is the JSON record of the run.
	RunGC(ctx context.Context, trigger string, progress func(string)) (json.RawMessage, error)
	// GCResults are the JSON records of the last runs, newest first.
	GCResults(ctx context.Context) (json.RawMessage, error)
}
