// Package importcmd implements `dvcr import SOURCE REPOSITORY`: one import
// through the registry's HTTP API, with a progress bar at a terminal, NDJSON
// progress with -o json, and a summary.
package importcmd

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/cli/internal/registryflags"
	"github.com/dvcr/dvcr/importer"
)

// Streams are the command's standard streams.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Flags are the command's flags.
type Flags struct {
	registryflags.Flags
	Tag       string
	Checksums []string
	TempDir   string
}

// NewCommand returns the `import` command.
func NewCommand(streams Streams) *cobra.Command {
	f := &Flags{}
	cmd := &cobra.Command{
		Use:   "import SOURCE REPOSITORY",
		Short: "Import a disk image into DVCR from a file, stdin, an HTTP(S) URL, a container registry or another DVCR image",
		Long: `Import a disk image (qcow2, raw, vmdk, vdi, iso; optionally gz, xz or zstd
compressed) into REPOSITORY: cvi/NAME, vi/NAMESPACE/NAME or vd/NAMESPACE/NAME.

SOURCE is a file path, - (standard input), an http:// or https:// URL,
docker://HOST/REPO[:TAG|@DIGEST] (an image with the disk under /disk/), or
dvcr://cvi/NAME, dvcr://vi/NAMESPACE/NAME (an image in the same registry,
linked without copying).`,
		Example: `  dvcr import ./ubuntu.qcow2 cvi/ubuntu-24-04
  dvcr import https://example.com/noble.img vi/default/noble --checksum sha256:<hex>
  xz -dc disk.raw.xz | dvcr import - vd/default/root-disk
  dvcr import dvcr://cvi/ubuntu-24-04 vi/default/ubuntu`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return Run(cmd.Context(), args[0], args[1], f, streams)
		},
	}
	fs := cmd.Flags()
	f.Flags.Add(fs, registryflags.Help{Registry: "registry to import into", Also: "docker:// sources", AlsoTLS: "https:// and docker:// sources"})
	fs.StringVar(&f.Tag, "tag", "latest", "tag to write")
	fs.StringArrayVar(&f.Checksums, "checksum", nil, "expected checksum of the source bytes as sent, ALG:HEX (md5, sha1, sha256, sha512); repeatable")
	fs.StringVar(&f.TempDir, "tmp-dir", "", "where a source of unknown length (stdin, HTTP without Content-Length) is spooled (default $TMPDIR)")
	return cmd
}

// Run imports and reports.
func Run(ctx context.Context, src, repo string, f *Flags, streams Streams) error {
	if err := f.Validate(); err != nil {
		return err
	}
	opts := importer.Options{
		Registry: f.Registry, RegistryHost: f.RegistryHost, Insecure: f.Insecure,
		AuthFile: f.AuthFile, Tag: f.Tag, Checksums: f.Checksums, TempDir: f.TempDir, Stdin: streams.In,
	}
	var err error
	if opts.CABundle, err = f.CABundle(); err != nil {
		return err
	}
	r := newReporter(streams, f.JSON(), f.Records(streams.Err, "import"))
	opts.Progress = r.Event
	res, err := importer.Import(ctx, src, repo, opts)
	r.Close()
	if err != nil {
		return fmt.Errorf("import %s into %s: %w", src, repo, err)
	}
	return r.result(res)
}
