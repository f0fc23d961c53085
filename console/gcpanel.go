package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"k8s.io/client-go/rest"

	"github.com/dvcr/dvcr/admin"
	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/storage"
)

// Collector is what the garbage collection panel needs.
type Collector interface {
	// Results are the records of the last runs, newest first.
	Results(ctx context.Context) ([]gc.Result, error)
	// Check is what a run would delete; the cluster is read with kube.
	Check(ctx context.Context, kube *rest.Config) (*gc.CheckReport, error)
	// Server is the running registry's state; an error when none answers.
	Server(ctx context.Context) (admin.Status, error)
	// Run runs the collector in the running registry now.
	Run(ctx context.Context, progress func(string)) (json.RawMessage, error)
}

// LocalCollector reaches the collector of a dvcr serve through its
// configuration file: records and the check read the storage it names, a
// run goes to its admin socket. It serves a console started where the
// registry's storage and socket are (inside DVCR's pod, or on its host).
type LocalCollector struct {
	ConfigPath string
}

// open reads the configuration on every call: the panel follows a
// registry whose configuration changes while the console runs.
func (c LocalCollector) open(ctx context.Context) (*config.Config, storagedriver.StorageDriver, error) {
	cfg, err := config.Load(c.ConfigPath)
	if err != nil {
		return nil, nil, err
	}
	driver, err := storage.OpenDriver(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, driver, nil
}

// Results implements Collector.
func (c LocalCollector) Results(ctx context.Context) ([]gc.Result, error) {
	_, driver, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	return gc.NewResultStore(driver).List(ctx)
}

// Check implements Collector.
func (c LocalCollector) Check(ctx context.Context, kube *rest.Config) (*gc.CheckReport, error) {
	cfg, driver, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	return gc.CheckStore(ctx, cfg, driver, kube, gc.DefaultPageSize)
}

func (c LocalCollector) client(ctx context.Context) (*admin.Client, error) {
	cfg, err := config.Load(c.ConfigPath)
	if err != nil {
		return nil, err
	}
	return admin.Dial(ctx, cfg.DVCR.AdminSocket)
}

// Server implements Collector.
func (c LocalCollector) Server(ctx context.Context) (admin.Status, error) {
	client, err := c.client(ctx)
	if err != nil {
		return admin.Status{}, err
	}
	return client.Status(ctx)
}

// Run implements Collector.
func (c LocalCollector) Run(ctx context.Context, progress func(string)) (json.RawMessage, error) {
	client, err := c.client(ctx)
	if err != nil {
		return nil, err
	}
	return client.RunGC(ctx, gcTrigger, progress)
}

// gcTrigger is the trigger a run from the console records, as one from
// `dvcr-cleaner gc run`.
const gcTrigger = "manual"

// GCPanel is the body of GET /api/gc.
type GCPanel struct {
	Results     []gc.Result   `json:"results"`
	Server      *admin.Status `json:"server,omitempty"`
	ServerError string        `json:"serverError,omitempty"`
}

func (s *Server) gcStatus(w http.ResponseWriter, r *http.Request) {
	if s.opts.GC == nil {
		writeAPIError(w, ErrGCUnavailable)
		return
	}
	ctx, cancel := callContext(r)
	defer cancel()
	results, err := s.opts.GC.Results(ctx)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	panel := GCPanel{Results: results}
	if panel.Results == nil {
		panel.Results = []gc.Result{}
	}
	if st, err := s.opts.GC.Server(ctx); err != nil {
		panel.ServerError = err.Error()
	} else {
		panel.Server = &st
	}
	writeJSON(w, http.StatusOK, panel)
}

func (s *Server) gcCheck(w http.ResponseWriter, r *http.Request) {
	if s.opts.GC == nil {
		writeAPIError(w, ErrGCUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*callTimeout)
	defer cancel()
	report, err := s.opts.GC.Check(ctx, s.opts.Kube)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, report)
}

// gcRun streams the run as JSON lines (admin.Event): progress, then the
// record or the error. Users who may not exec into DVCR's pods are refused
// before anything starts.
func (s *Server) gcRun(w http.ResponseWriter, r *http.Request) {
	if s.opts.GC == nil {
		writeAPIError(w, ErrGCUnavailable)
		return
	}
	if !s.mayRunGC(r.Context()) {
		writeAPIError(w, fmt.Errorf("%w: running garbage collection takes the right to exec into DVCR's pods (create pods/exec in namespace %q), which this user does not have",
			ErrForbidden, s.opts.DVCRNamespace))
		return
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(ev admin.Event) {
		_ = enc.Encode(ev)
		if flusher != nil {
			flusher.Flush()
		}
	}
	result, err := s.opts.GC.Run(r.Context(), func(line string) { send(admin.Event{Progress: line}) })
	if err != nil {
		send(admin.Event{Result: result, Error: err.Error()})
		return
	}
	send(admin.Event{Result: result})
}
