// Package source opens the places an import reads a disk image from: a local
// file, standard input, an http:// or https:// URL (with transparent resume of
// dropped connections) and a container image in a registry (docker://) laid
// out as FROM scratch + COPY <file> /disk/.
//
// A source yields the disk file's bytes exactly as the source holds them;
// detecting and looking through compression is the caller's business.
package source

import (
	"context"
	"io"
)

// Stream is an opened source: the disk file's bytes exactly as the source
// has them (a .qcow2.xz stays compressed).
type Stream struct {
	Body io.ReadCloser
	// Name is the file name for disk/<Name> in the image, already sanitized
	// (see SanitizeName); never empty.
	Name string
	// Size is the length of Body in bytes, or -1 when unknown (stdin, HTTP
	// without Content-Length).
	Size int64
}

// Source is something an import can read a disk image from.
type Source interface {
	// Open starts reading. ctx bounds the whole transfer, including reads
	// from Body, not just the call.
	Open(ctx context.Context) (*Stream, error)
	// String describes the source for messages; it never includes
	// credentials.
	String() string
}

// Options configure the sources Parse returns.
type Options struct {
	Stdin    io.Reader // read for the source "-"
	CABundle []byte    // extra PEM roots for https:// and docker://, added to the system pool
	Insecure bool      // docker://: the registry speaks plain HTTP
	// AuthFile is a docker config JSON ("auths") for docker://; empty means
	// the default keychain ($DOCKER_CONFIG or ~/.docker/config.json).
	AuthFile string
	// Retries bounds HTTP resume attempts after a dropped connection
	// (DefaultRetries when 0; negative disables resuming).
	Retries int
	// OnRetry, when set, is told about each resume or retry so the CLI can
	// show it.
	OnRetry func(msg string)
}

// DefaultRetries is the number of resume attempts when Options.Retries is 0.
const DefaultRetries = 5

func (o Options) retries() int {
	switch {
	case o.Retries == 0:
		return DefaultRetries
	case o.Retries < 0:
		return 0
	}
	return o.Retries
}

func (o Options) notify(msg string) {
	if o.OnRetry != nil {
		o.OnRetry(msg)
	}
}
