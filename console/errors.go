package console

import "errors"

// Sentinel errors of the console's API; handlers map them to HTTP codes.
var (
	// ErrBadRequest: the request's JSON or parameters are malformed.
	ErrBadRequest = errors.New("bad request")
	// ErrUnknownKind: a kind other than cvi or vi.
	ErrUnknownKind = errors.New("unknown image kind (want cvi or vi)")
	// ErrNoUploadURL: the image publishes no upload URL (not an Upload
	// image, or not waiting for its upload).
	ErrNoUploadURL = errors.New("the image has no upload URL")
	// ErrGCUnavailable: the console was started without the registry's
	// configuration, so it cannot reach the collector.
	ErrGCUnavailable = errors.New("the garbage collection panel needs --config (the DVCR configuration file)")
	// ErrForbidden: the operator's identity may not do this.
	ErrForbidden = errors.New("forbidden")
)

// ErrNotReady: the image is not Ready, so it has no disk file to download.
var ErrNotReady = errors.New("the image is not Ready")
