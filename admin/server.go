package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Handler serves the admin API over a Backend.
func Handler(b Backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Status(r.Context()))
	})
	mux.HandleFunc("DELETE "+PathRepositories+"{path...}", func(w http.ResponseWriter, r *http.Request) {
		if err := b.DeleteRepository(r.Context(), r.PathValue("path")); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+PathGCResults, func(w http.ResponseWriter, r *http.Request) {
		res, err := b.GCResults(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST "+PathGCRun, func(w http.ResponseWriter, r *http.Request) {
		streamRun(w, r, b)
	})
	return mux
}

// streamRun answers with newline-delimited Events so that the CLI can show
// progress while the run works.
func streamRun(w http.ResponseWriter, r *http.Request, b Backend) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	send := func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	// The run belongs to the server: a CLI that goes away (Ctrl-C, a
	// dropped kubectl exec) must not abort it half way.
	ctx := context.WithoutCancel(r.Context())
	trigger := r.URL.Query().Get("trigger")
	if trigger == "" {
		trigger = "manual"
	}
	res, err := b.RunGC(ctx, trigger, func(line string) { send(Event{Progress: line}) })
	if err != nil {
		send(Event{Result: res, Error: err.Error()})
		return
	}
	send(Event{Result: res})
}

// HTTPError lets a Backend choose the status of an error.
type HTTPError struct {
	Status int
	Err    error
}

func (e *HTTPError) Error() string { return e.Err.Error() }
func (e *HTTPError) Unwrap() error { return e.Err }

func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var he *HTTPError
	if errors.As(err, &he) {
		status = he.Status
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Listen opens the admin socket with mode 0600, replacing a stale socket
// left by a killed process but refusing to take over a live one.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("dvcr.adminSocket %q: %w", path, err)
	}
	if _, err := os.Stat(path); err == nil {
		if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
			conn.Close()
			return nil, fmt.Errorf("dvcr.adminSocket %q: another dvcr serve is already running with this socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("dvcr.adminSocket %q: removing stale socket: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("dvcr.adminSocket %q: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("dvcr.adminSocket %q: %w", path, err)
	}
	return ln, nil
}
