package upload

import (
	"errors"
	"net/http"
)

// Sentinel errors; the errors returned wrap them with the detail.
var (
	// ErrRefused: a Receiver wraps it when the uploaded image itself is
	// refused (unknown format, bad checksum, ...): the uploader gets 422.
	ErrRefused = errors.New("image refused")
	// ErrUnavailable: a Receiver wraps it for a temporary failure (the
	// registry is read-only during a GC window, ...): the uploader gets 503
	// with Retry-After, and the spooled bytes are kept for the retry.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrSpoolDir: NewHandler could not create or use Options.SpoolDir.
	ErrSpoolDir = errors.New("upload spool directory unusable")
)

// StatusError is what a Receiver error may implement (anywhere in its
// chain, found with errors.As) to choose the HTTP status of the answer.
type StatusError interface {
	error
	HTTPStatus() int
}

// WithStatus wraps err so that the uploader gets status (4xx or 5xx).
func WithStatus(err error, status int) error {
	return &statusError{err: err, status: status}
}

type statusError struct {
	err    error
	status int
}

func (e *statusError) Error() string   { return e.err.Error() }
func (e *statusError) Unwrap() error   { return e.err }
func (e *statusError) HTTPStatus() int { return e.status }

// receiveStatus maps an error of Receiver.Receive to the HTTP status of the
// answer: an explicit StatusError first, then the sentinels, else 500.
func receiveStatus(err error) int {
	var se StatusError
	if errors.As(err, &se) {
		if s := se.HTTPStatus(); s >= 400 && s <= 599 {
			return s
		}
	}
	switch {
	case errors.Is(err, ErrRefused):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
