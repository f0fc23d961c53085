// Package exporter is the reverse of package importer: it reads an image in
// the importers' layout (one uncompressed tar layer holding disk/<file>, see
// SPEC "Exporting images") from DVCR and writes the disk file's bytes to a
// file or a writer, exactly as they were imported, or with --decompress the
// inner image of a gz, xz or zstd file.
//
// One pass, streaming: the layer is read once through the registry's HTTP
// API and hashed as it goes; nothing is held in memory but a buffer. The
// layer digest is checked at the end, whatever is written. A dropped
// connection resumes with a Range request from the byte reached (bounded
// retries); Options.Continue resumes an interrupted file from its size, its
// bytes re-hashed into the layer digest so a file that is not a prefix of
// the image fails the final check.
//
// Options.Format "raw" converts a disk file to a sparse raw file in Go,
// equal to `qemu-img convert -O raw`: a mapper per format (qcow2raw.go:
// v2, v3, clusters stored or zlib/zstd-compressed; vmdkraw.go:
// monolithicSparse and streamOptimized; vdiraw.go) reads the metadata by
// Range and lists the pieces of the file (rawmap.go); the layer is then
// streamed once, the metadata met compared with what was read, the data
// inflated if compressed and written at its guest offset, and what is not
// written (or all zeros) left a hole.
package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/progress"
)

// DefaultIdleTimeout is how long a silent registry connection is waited for.
const DefaultIdleTimeout = time.Minute

// Options of an export.
type Options struct {
	Registry     string // host:port or URL; default importer.DefaultRegistry
	RegistryHost string // host used to shorten long names; default config.DefaultRegistryHost
	Insecure     bool
	CABundle     []byte
	AuthFile     string
	Continue     bool      // resume FILE from its current size
	Decompress   bool      // write the inner image of a gz, xz or zstd disk file
	Format       string    // "raw": convert a qcow2, vmdk or vdi to a sparse raw file; "": as stored
	Stdout       io.Writer // where FILE "-" goes
	MaxRetries   int       // reconnections without progress before giving up; default 5
	// IdleTimeout gives up a connection that sends nothing for this long
	// (and resumes); default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// RegistryTransport carries the requests instead of the network.
	RegistryTransport http.RoundTripper
	Progress          func(Event)
	// Begin, when set, is called once the disk file's name (as stored, or
	// as written when converted or decompressed) and the output's size (-1
	// when unknown: decompressing) are known, before the first byte is
	// written; an error ends the export. A server streaming FILE "-" sets
	// its response headers there.
	Begin func(name string, size int64) error
}

// Phases reported in Event.Phase.
const (
	PhaseContinue = "continue" // re-hashing the bytes already in FILE
	PhaseTransfer = "transfer" // bytes of the disk file come from the registry
	PhaseRetry    = "retry"    // the connection dropped: resuming with Range
	PhaseWaiting  = "waiting"  // the registry answered 503: waiting
)

// Event is a progress report.
type Event = progress.Event

// Result describes an export.
type Result struct {
	Repository    string  `json:"repository"`
	Tag           string  `json:"tag"`
	Digest        string  `json:"digest"`                 // of the manifest
	File          string  `json:"file"`                   // "-" for standard output
	Format        string  `json:"format"`                 // of the written file
	SourceFormat  string  `json:"sourceFormat,omitempty"` // the image's, when converted
	Compression   string  `json:"compression,omitempty"`
	Decompressed  bool    `json:"decompressed"`
	Bytes         int64   `json:"bytes"`  // length of the written file
	SHA256        string  `json:"sha256"` // of the written file
	ContinuedFrom int64   `json:"continuedFrom,omitempty"`
	Seconds       float64 `json:"seconds"`
}

// Export writes the disk file of REPOSITORY[:TAG] to file: a path, "-" for
// Options.Stdout, "" for the disk file's own name in the current directory,
// or a directory to write that name into.
func Export(ctx context.Context, repository, file string, opts Options) (*Result, error) {
	start := time.Now()
	opts = withDefaults(opts)
	if err := checkOptions(file, opts); err != nil {
		return nil, err
	}
	repo, tag, err := importer.ParseRepository(repository, opts.RegistryHost)
	if err != nil {
		return nil, err
	}
	if tag == "" {
		tag = "latest"
	}
	display := strings.TrimSuffix(repository, ":"+tag)
	prog := progress.New(opts.Progress)
	c, err := newClient(ctx, opts, prog, repo.Path())
	if err != nil {
		return nil, err
	}
	img, err := resolve(ctx, c, display, repo.Path(), tag)
	if err != nil {
		return nil, err
	}
	res, err := transfer(ctx, c, img, file, opts, prog)
	if err != nil {
		return nil, err
	}
	res.Repository, res.Tag, res.Digest = display, tag, img.digest.String()
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func withDefaults(opts Options) Options {
	if opts.Registry == "" {
		opts.Registry = importer.DefaultRegistry
	}
	if opts.RegistryHost == "" {
		opts.RegistryHost = config.DefaultRegistryHost
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 5
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	return opts
}

// FormatRaw is Options.Format for a raw image.
const FormatRaw = "raw"

// ErrBadOptions: options that cannot go together.
var ErrBadOptions = errors.New("bad options")

func checkOptions(file string, opts Options) error {
	if opts.Continue && file == "-" {
		return fmt.Errorf("%w: --continue needs a FILE, not standard output", ErrBadOptions)
	}
	if opts.Format != "" && opts.Format != FormatRaw {
		return fmt.Errorf("%w: --format %q: only raw", ErrBadOptions, opts.Format)
	}
	if opts.Format == FormatRaw && (file == "-" || opts.Continue || opts.Decompress) {
		return fmt.Errorf("%w: --format raw writes a sparse FILE (it seeks), without --continue or --decompress", ErrBadOptions)
	}
	if opts.Continue && opts.Decompress {
		return fmt.Errorf("%w: --continue cannot resume a --decompress export (the file holds decompressed bytes); export again without --continue", ErrBadOptions)
	}
	return nil
}

// newClient connects to the registry with pull scope on repo.
func newClient(ctx context.Context, opts Options, prog *progress.Counter, repo string) (*registryclient.Client, error) {
	e := importer.Endpoint{Registry: opts.Registry, Insecure: opts.Insecure, CABundle: opts.CABundle, AuthFile: opts.AuthFile,
		Transport: opts.RegistryTransport, OnWait: importer.WaitNote(prog.Note, PhaseWaiting)}
	return e.Connect(ctx, []string{repo}, registryclient.Options{PullOnly: true})
}
