package registryclient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors; the errors returned wrap them with the detail.
var (
	// ErrUnavailable: the registry kept answering 503 until the context ended.
	ErrUnavailable = errors.New("registry unavailable")
	// ErrUploadLost: the registry no longer knows the upload session.
	ErrUploadLost = errors.New("upload session lost")
	// ErrMountRefused: the registry would not mount the blob from the source repository.
	ErrMountRefused = errors.New("blob mount refused")
	// ErrNotFound: the manifest or blob does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the registry refused the credentials (401/403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrStorageFull: the registry's volume has no space for the write
	// (507 Insufficient Storage); retrying cannot help until space is freed.
	ErrStorageFull = errors.New("registry storage full")
)

// APIError is a non-success answer of the registry, with the OCI error
// codes and messages of its body.
type APIError struct {
	Method string
	Path   string
	Status int
	Codes  []string
	Detail string
}

func (e *APIError) Error() string {
	if e.Status == http.StatusInsufficientStorage && e.Detail != "" {
		// DVCR says it in words: what is free and what to do.
		return e.Detail
	}
	msg := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.Path, e.Status)
	if len(e.Codes) > 0 {
		msg += " " + strings.Join(e.Codes, ",")
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap maps the status to the package's sentinels so callers can use
// errors.Is without knowing HTTP.
func (e *APIError) Unwrap() error {
	switch e.Status {
	case 401, 403:
		return ErrUnauthorized
	case 404:
		for _, c := range e.Codes {
			if c == "BLOB_UPLOAD_UNKNOWN" {
				return ErrUploadLost
			}
		}
		return ErrNotFound
	case 503:
		return ErrUnavailable
	case http.StatusInsufficientStorage:
		return ErrStorageFull
	}
	return nil
}
