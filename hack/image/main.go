// Command image is `make image`: it builds the DVCR container image from Go,
// with no Docker daemon. It cross-compiles static dvcr and dvcr-cleaner for
// linux/amd64 and linux/arm64, puts each pair with a minimal root filesystem
// (CA certificates, passwd and group with the dvcr user 64535:64535, /tmp,
// /var/run/dvcr, /etc/docker/registry) into one deterministic layer, and
// writes:
//
//	_out/image/oci                     an OCI image layout: the index of both platforms
//	_out/image/dvcr-linux-<arch>.tar   a `docker load` archive per platform
//	_out/image/digests.json            digests and sizes
//
// With --push REGISTRY/REPO:TAG it also pushes the index, with the
// credentials of the user's docker config. Every timestamp is the commit
// time of HEAD (or SOURCE_DATE_EPOCH), so two runs at the same commit with
// the same Go toolchain give the same index digest.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// options are the command-line flags.
type options struct {
	root    string   // the repository; "" = the main module's directory
	out     string   // output directory
	tag     string   // reference name; "" = ghcr.io/dvcr/dvcr:<version>
	version string   // image version; "" = the chart's appVersion
	push    string   // REGISTRY/REPO:TAG to push the index to; "" = no push
	goCmd   string   // the go command that compiles the binaries
	arches  []string // GOARCH values, one image each
}

// defaultRepository is the chart's image.repository (charts/dvcr/values.yaml).
const defaultRepository = "ghcr.io/dvcr/dvcr"

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var arches string
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.root, "root", "", "repository root (default: the main module's directory)")
	fs.StringVar(&o.out, "out", "_out/image", "output directory, relative to the repository root unless absolute")
	fs.StringVar(&o.tag, "tag", "", "image reference name (default "+defaultRepository+":<version>, as the chart pulls it)")
	fs.StringVar(&o.version, "version", "", "image version (default: appVersion of charts/dvcr/Chart.yaml)")
	fs.StringVar(&o.push, "push", "", "push the index to REGISTRY/REPO:TAG (credentials from the docker config)")
	fs.StringVar(&o.goCmd, "go", "go", "go command that compiles the binaries")
	fs.StringVar(&arches, "arch", "amd64,arm64", "comma-separated GOARCH values, one image each")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, a := range strings.Split(arches, ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.arches = append(o.arches, a)
		}
	}
	if len(o.arches) == 0 {
		return o, fmt.Errorf("--arch: no architecture given")
	}
	return o, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err == nil {
		_, err = run(ctx, opts, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}
