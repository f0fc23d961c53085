// Package registryflags holds the flags of the commands that talk to DVCR's
// registry as a client (`dvcr import`, `dvcr export`): where it is, how to
// trust and authenticate to it, the output format and the log format.
package registryflags

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/logging"
)

// Flags are the shared flags.
type Flags struct {
	Registry     string
	RegistryHost string
	Insecure     bool
	CAFile       string
	AuthFile     string
	Output       string
	LogFormat    logging.Format
}

// Help is what a command says its registry flags apply to; empty fields
// say it of the registry alone.
type Help struct {
	Registry string // "registry to import into"
	Also     string // other endpoints --insecure and --authfile apply to: "docker:// sources"
	AlsoTLS  string // other endpoints --ca-file applies to: "https:// and docker:// sources"
}

// Add registers the flags.
func (f *Flags) Add(fs *pflag.FlagSet, h Help) {
	also, alsoTLS := and(h.Also), and(h.AlsoTLS)
	fs.StringVar(&f.Registry, "registry", importer.DefaultRegistry, h.Registry+": HOST:PORT, or a URL with http:// or https://")
	fs.StringVar(&f.RegistryHost, "registry-host", config.DefaultRegistryHost, "registry host used to shorten long repository names (dvcr.registryHost)")
	fs.BoolVar(&f.Insecure, "insecure", false, "plain HTTP to the registry"+also)
	fs.StringVar(&f.CAFile, "ca-file", "", "PEM CA bundle trusted for the registry"+alsoTLS)
	fs.StringVar(&f.AuthFile, "authfile", "", "docker config file with credentials for the registry"+also)
	fs.StringVarP(&f.Output, "output", "o", "", "output format: json (NDJSON progress, then the result)")
	logging.AddFlag(fs, &f.LogFormat, `"<phase>: <progress>" lines, a bar at a terminal`)
}

// Records is the logger progress and notes go to as JSON records on w, with
// --log-format json; nil: text lines (progressview).
func (f *Flags) Records(w io.Writer, command string) *slog.Logger {
	if f.LogFormat != logging.JSON {
		return nil
	}
	return logging.Component(logging.New(w, logging.JSON, "", nil), command, false)
}

func and(s string) string {
	if s == "" {
		return ""
	}
	return " and " + s
}

// Validate checks the output format.
func (f *Flags) Validate() error {
	if f.Output != "" && f.Output != "json" && f.Output != "text" {
		return fmt.Errorf("--output %q: want json or text", f.Output)
	}
	return nil
}

// JSON tells whether -o json was asked for.
func (f *Flags) JSON() bool { return f.Output == "json" }

// CABundle reads --ca-file; nil without one.
func (f *Flags) CABundle() ([]byte, error) {
	if f.CAFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	return pem, nil
}
