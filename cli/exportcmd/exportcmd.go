// Package exportcmd implements `dvcr export REPOSITORY[:TAG] [FILE|-]`: the
// disk file of an image in the importers' layout written to a file or
// standard output, with a progress bar at a terminal, NDJSON progress with
// -o json, and a summary.
package exportcmd

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/cli/internal/registryflags"
	"github.com/dvcr/dvcr/exporter"
)

// Streams are the command's standard streams.
type Streams struct {
	Out io.Writer
	Err io.Writer
}

// Flags are the command's flags.
type Flags struct {
	registryflags.Flags
	Continue    bool
	Decompress  bool
	IdleTimeout time.Duration
	Format      string
}

// NewCommand returns the `export` command.
func NewCommand(streams Streams) *cobra.Command {
	f := &Flags{}
	cmd := &cobra.Command{
		Use:   "export REPOSITORY[:TAG] [FILE|-]",
		Short: "Export the disk image of a DVCR image to a file or standard output",
		Long: `Write the disk file of REPOSITORY (cvi/NAME, vi/NAMESPACE/NAME or
vd/NAMESPACE/NAME, tag latest unless :TAG) byte for byte as it was imported:
to FILE, to standard output (-), or by default to the disk file's own name in
the current directory. The layer digest is checked over every byte; a dropped
connection resumes where it stopped.`,
		Example: `  dvcr export cvi/ubuntu-24-04                      # ./noble.qcow2
  dvcr export vi/default/noble:v2 noble.img
  dvcr export cvi/ubuntu-24-04 big.qcow2 --continue # after an interrupted export
  dvcr export cvi/alpine --decompress - | qemu-img info /dev/stdin`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := ""
			if len(args) == 2 {
				file = args[1]
			}
			return Run(cmd.Context(), args[0], file, f, streams)
		},
	}
	fs := cmd.Flags()
	f.Flags.Add(fs, registryflags.Help{Registry: "registry to export from"})
	fs.BoolVar(&f.Continue, "continue", false, "resume an interrupted export into FILE from its current size")
	fs.BoolVar(&f.Decompress, "decompress", false, "write the inner image of a gz, xz or zstd disk file")
	fs.StringVar(&f.Format, "format", "", "raw: convert a qcow2 (v2, v3; clusters stored, zlib- or zstd-compressed), vmdk (monolithicSparse, streamOptimized) or vdi to a sparse raw FILE, as qemu-img convert -O raw")
	fs.DurationVar(&f.IdleTimeout, "idle-timeout", exporter.DefaultIdleTimeout, "give up a registry connection that sends nothing for this long, and resume")
	return cmd
}

// exportGCPercent is the export's heap goal over the live heap, in percent.
const exportGCPercent = 25

// Run exports and reports.
func Run(ctx context.Context, repo, file string, f *Flags, streams Streams) error {
	// An export streams through fixed buffers: its live heap is mostly what
	// the packages of this binary allocate at start (the S3 SDK's endpoint
	// tables, Kubernetes schemes), so the default heap goal of twice the
	// live heap is megabytes of RSS for nothing. A few more collections of
	// a small heap cost little.
	debug.SetGCPercent(exportGCPercent)
	if err := f.Validate(); err != nil {
		return err
	}
	if f.JSON() && file == "-" {
		return fmt.Errorf("-o json writes to standard output, so FILE cannot be - as well")
	}
	opts := exporter.Options{
		Registry: f.Registry, RegistryHost: f.RegistryHost, Insecure: f.Insecure, AuthFile: f.AuthFile,
		Continue: f.Continue, Decompress: f.Decompress, Format: f.Format, IdleTimeout: f.IdleTimeout, Stdout: streams.Out,
	}
	var err error
	if opts.CABundle, err = f.CABundle(); err != nil {
		return err
	}
	r := newReporter(streams, f.JSON(), file == "-", f.Records(streams.Err, "export"))
	opts.Progress = r.Event
	res, err := exporter.Export(ctx, repo, file, opts)
	r.Close()
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return r.result(res)
}
