// Package importer streams a disk image from a source into DVCR in the
// importers' layout: one uncompressed tar layer holding disk/<file> with the
// source's bytes exactly as they came, and config labels with the size, the
// virtual size and the format (see SPEC "Importing images").
//
// One pass: the source is read once, and on the way its bytes are inspected
// (format, virtual size, refusals: package diskformat), checksummed, hashed
// into the layer digest and sent to the registry in chunks through its HTTP
// API, so the write gate and the garbage collection window apply (a refused
// chunk waits and is sent again). Only a source of unknown length is first
// spooled to a temporary file, because the tar header needs the size.
// Nothing is tagged until every check has passed; a refused or failed import
// cancels its upload and leaves no tag behind.
package importer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/importer/source"
	"github.com/dvcr/dvcr/progress"
)

// DefaultRegistry is where `dvcr serve` listens with its embedded defaults.
const DefaultRegistry = "127.0.0.1:5000"

// Options of an import.
type Options struct {
	Registry     string   // host:port, or a URL with the scheme; default DefaultRegistry
	RegistryHost string   // host used to shorten long repository names; default config.DefaultRegistryHost
	Insecure     bool     // plain HTTP to the registry and docker:// sources
	CABundle     []byte   // PEM roots trusted for the registry and https:// and docker:// sources
	AuthFile     string   // docker config file: credentials for docker:// and the target registry
	Tag          string   // default "latest"
	Checksums    []string // ALG:HEX of the source bytes as sent
	TempDir      string   // where a source of unknown length is spooled; default os.TempDir()
	Stdin        io.Reader
	ChunkSize    int // bytes per PATCH; default registryclient.DefaultChunkSize
	// RegistryTransport carries the requests to the registry instead of the
	// network (DVCR's controller passes the registry's in-process transport).
	RegistryTransport http.RoundTripper
	Progress          func(Event) // called from the import's goroutines, one call at a time
}

// Phases reported in Event.Phase.
const (
	PhaseDownload = "download" // a source of unknown length is spooled to a temporary file
	PhaseTransfer = "transfer" // bytes go to the registry
	PhaseWaiting  = "waiting"  // the registry is read-only (garbage collection): waiting
	PhaseRetry    = "retry"    // the source connection dropped: resuming
	PhaseVerify   = "verify"   // final checks of the image
	PhaseMount    = "mount"    // blobs mounted from an image in the same registry
	PhaseCommit   = "commit"   // writing config and manifest, tagging
)

// Event is a progress report.
type Event = progress.Event

// Result describes an imported image.
type Result struct {
	Repository    string  `json:"repository"`
	Tag           string  `json:"tag"`
	Digest        string  `json:"digest"`
	Format        string  `json:"format"`
	Compression   string  `json:"compression,omitempty"`
	CDROM         bool    `json:"cdrom"`
	StoredBytes   int64   `json:"storedBytes"`
	UnpackedBytes int64   `json:"unpackedBytes"`
	SourceBytes   int64   `json:"sourceBytes"`
	Seconds       float64 `json:"seconds"`
}

// Import reads SOURCE (a file, "-", an http(s) URL, docker://…, dvcr://…)
// into REPOSITORY (cvi/NAME, vi/NS/NAME, vd/NS/NAME[:TAG]).
func Import(ctx context.Context, src, repository string, opts Options) (*Result, error) {
	if from, ok := strings.CutPrefix(src, "dvcr://"); ok {
		return importFromDVCR(ctx, from, repository, opts)
	}
	opts = withDefaults(opts)
	prog := progress.New(opts.Progress)
	s, err := source.Parse(src, sourceOptions(opts, prog))
	if err != nil {
		return nil, err
	}
	j, err := newJob(ctx, repository, opts, prog)
	if err != nil {
		return nil, err
	}
	stream, err := s.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", s, err)
	}
	defer stream.Body.Close()
	return j.run(ctx, stream)
}

// ImportStream imports an already opened stream (an upload's body) into
// repository.
func ImportStream(ctx context.Context, stream *source.Stream, repository string, opts Options) (*Result, error) {
	opts = withDefaults(opts)
	j, err := newJob(ctx, repository, opts, progress.New(opts.Progress))
	if err != nil {
		return nil, err
	}
	return j.run(ctx, stream)
}

func withDefaults(opts Options) Options {
	if opts.Registry == "" {
		opts.Registry = DefaultRegistry
	}
	if opts.RegistryHost == "" {
		opts.RegistryHost = config.DefaultRegistryHost
	}
	if opts.Tag == "" {
		opts.Tag = "latest"
	}
	return opts
}

func sourceOptions(opts Options, prog *progress.Counter) source.Options {
	return source.Options{
		Stdin:    opts.Stdin,
		CABundle: opts.CABundle,
		Insecure: opts.Insecure,
		AuthFile: opts.AuthFile,
		OnRetry:  func(msg string) { prog.Note(PhaseRetry, msg) },
	}
}

// newClient connects to the target registry with push scope on repos.
func newClient(ctx context.Context, opts Options, prog *progress.Counter, repos ...string) (*registryclient.Client, error) {
	e := Endpoint{Registry: opts.Registry, Insecure: opts.Insecure, CABundle: opts.CABundle, AuthFile: opts.AuthFile,
		Transport: opts.RegistryTransport, OnWait: WaitNote(prog.Note, PhaseWaiting)}
	return e.Connect(ctx, repos, registryclient.Options{ChunkSize: opts.ChunkSize})
}
