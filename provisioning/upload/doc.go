// Package upload is DVCR's upload endpoint: PUT or POST /upload/<token>
// streams a disk image into a spool file, and the complete file is handed to
// the Receiver registered for the token (the provisioning controller, which
// imports it into the registry). The answer waits for the Receiver, so the
// exit status of `curl --fail -T disk.qcow2 URL` tells the outcome.
//
// The token alone authorizes the upload: it is at least 128 random bits
// (NewToken), it is never logged nor echoed (log lines carry the first 8 hex
// digits of its SHA-256), and its spool file is named after its SHA-256.
//
// Spooling is what makes an interrupted upload resumable: the bytes received
// before a dropped connection stay in the spool file (fsynced), GET or HEAD
// tells how many (Upload-Offset), and a PUT with Content-Range: bytes N-M/TOTAL
// continues from there, as `curl -C N -T file URL` sends it.
//
// Status codes:
//
//	GET/HEAD 200  ready for data; Upload-Offset: bytes kept of an interrupted upload
//	GET/HEAD 409  an upload to the token is running; Upload-Offset: bytes so far
//	PUT/POST 201  complete and accepted by the Receiver
//	PUT/POST 202  a Content-Range chunk stored, the upload is not complete yet
//	400  malformed Content-Range, body shorter or longer than announced, or
//	     the connection broke (the bytes received are kept for a resume)
//	404  unknown, expired or used token (also an upload cancelled by Unregister)
//	405  other methods (Allow: GET, HEAD, PUT, POST)
//	409  another upload to the token is running
//	416  Content-Range does not start at the bytes kept (Upload-Offset tells them)
//	422  the Receiver refused the image (ErrRefused)
//	503  GC window (Options.ReadOnly) or ErrUnavailable from the Receiver; Retry-After
//	507  the volume is full: the spool file could not grow (the bytes received
//	     are discarded at once), or the Receiver's import did not fit
//	500  anything else
package upload

import (
	"context"
	"log/slog"
	"os"
	"time"
)

// Receiver takes a complete upload.
//
// Receive is called in the request's goroutine with the spool file open for
// reading at offset 0, its size and a file name (the URL's ?name=, else the
// filename of a Content-Disposition header, else "disk.img"); the token's
// lock is held meanwhile, so another upload to it gets 409. ctx ends when
// the token is unregistered or the uploader goes away.
//
// A nil error answers 201 and retires the token (later requests get 404,
// as after Unregister). An error is reported to the uploader with its
// message and a status chosen by receiveStatus: a StatusError in the chain
// (see WithStatus), ErrRefused → 422, ErrUnavailable → 503, else 500.
//
// Receive owns the file only for the duration of the call and must not keep
// it. Afterwards the handler closes it and removes the spool file, except
// after a 503 or when the uploader left before the outcome: then the bytes
// are kept so the uploader can retry without
// sending them again (PUT with "Content-Range: bytes */TOTAL" and no body),
// or simply upload again from the start.
type Receiver interface {
	Receive(ctx context.Context, f *os.File, size int64, name string) error
}

// Options configure a Handler.
type Options struct {
	// SpoolDir holds the spool files; created with mode 0700 if missing.
	SpoolDir string
	// ReadOnly tells whether the registry is in a GC window: PUT and POST
	// get 503 with Retry-After then (GET and HEAD still answer). Nil: never.
	ReadOnly func() bool
	// RetryAfter is announced with a 503; default 5s.
	RetryAfter time.Duration
	// IdleTimeout aborts an upload whose body sends nothing for this long
	// (the bytes so far are kept); default 5m. It replaces the server's
	// ReadTimeout for upload bodies, which would cut large uploads.
	IdleTimeout time.Duration
	// Logger, if set, gets one record per event, the upload named by the
	// attribute "upload": never the token, only its fingerprint (first 8
	// hex digits of its SHA-256).
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.RetryAfter <= 0 {
		o.RetryAfter = 5 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.ReadOnly == nil {
		o.ReadOnly = func() bool { return false }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}
