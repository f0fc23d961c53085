package registryclient

import (
	"errors"
	"net/http"
	"testing"
)

// TestStorageFull: a 507 reads as the registry's own words, is
// ErrStorageFull and is not retried; other server errors still are.
func TestStorageFull(t *testing.T) {
	const words = "DVCR storage is full: 1.0MiB free of 64.0MiB; run garbage collection or enlarge the volume"
	tests := []struct {
		name        string
		err         *APIError
		wantMsg     string
		wantFull    bool
		recoverable bool
	}{
		{"507", &APIError{Method: "PATCH", Path: "/v2/cvi/a/blobs/uploads/u", Status: http.StatusInsufficientStorage, Codes: []string{"DENIED"}, Detail: words},
			words, true, false},
		{"500", &APIError{Method: "PATCH", Path: "/v2/x", Status: 500, Codes: []string{"UNKNOWN"}, Detail: "boom"},
			"PATCH /v2/x: HTTP 500 UNKNOWN: boom", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.wantMsg {
				t.Errorf("Error() = %q, want %q", got, tt.wantMsg)
			}
			if got := errors.Is(tt.err, ErrStorageFull); got != tt.wantFull {
				t.Errorf("errors.Is(ErrStorageFull) = %t", got)
			}
			if got := recoverable(tt.err); got != tt.recoverable {
				t.Errorf("recoverable = %t, want %t", got, tt.recoverable)
			}
		})
	}
}
