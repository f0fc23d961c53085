package source

import "errors"

// Sentinel errors. Every error returned by this package that falls into one
// of these classes wraps the sentinel (with %w) and adds detail, so callers
// can branch with errors.Is and still print a useful message.
var (
	// ErrDVCRSource is returned by Parse for dvcr:// sources: those are
	// blob mounts inside the same DVCR and are handled by the caller.
	ErrDVCRSource = errors.New("dvcr:// source is handled by the importer itself")
	// ErrUnsupportedScheme: the SOURCE names a URL scheme we cannot read.
	ErrUnsupportedScheme = errors.New("unsupported source scheme")
	// ErrNotFound: missing file, HTTP 404, unknown repository or tag.
	ErrNotFound = errors.New("source not found")
	// ErrUnauthorized: HTTP 401/403 or a registry refusing the credentials.
	ErrUnauthorized = errors.New("source access denied")
	// ErrNoDiskFile: a container image without a regular file under disk/.
	ErrNoDiskFile = errors.New("no disk file in container image")
	// ErrSourceChanged: a resume is impossible because the remote object
	// changed between attempts (its ETag or Last-Modified differ).
	ErrSourceChanged = errors.New("source changed during download")
	// ErrTransfer: the download gave up after its retries.
	ErrTransfer = errors.New("transfer failed")
)
