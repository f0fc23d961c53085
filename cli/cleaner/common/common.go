// Package common holds what every dvcr-cleaner verb shares: the global
// flags (registry config, kubeconfig), output format handling and the
// confirmation prompt.
package common

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/spf13/pflag"
	"golang.org/x/term"
	"k8s.io/client-go/rest"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/kube"
	"github.com/dvcr/dvcr/logging"
	"github.com/dvcr/dvcr/storage"
)

// DefaultConfigPath is where the DVCR container mounts its configuration.
const DefaultConfigPath = "/etc/docker/registry/config.yml"

// Streams are the standard streams of the CLI.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// Options are the global flags of dvcr-cleaner.
type Options struct {
	// ConfigPath is --config; empty: DefaultConfigPath where it exists (in
	// the pod), otherwise the embedded defaults dvcr serve runs on without
	// --config (make run), so that both find the same storage and socket.
	ConfigPath     string
	Kubeconfig     string
	RequestTimeout time.Duration
	LogFormat      logging.Format
	// Err receives the log: notices, warnings, progress lines.
	Err io.Writer

	logger *slog.Logger // built once the flags are parsed
}

// AddFlags registers the global flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.ConfigPath, "config", "", "DVCR configuration file (registry config.yml with a dvcr: section) (default: "+DefaultConfigPath+
		" where it exists, otherwise the embedded defaults of dvcr serve: storage in ./data, admin socket ./data/admin.sock)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then in-cluster, then ~/.kube/config)")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", kube.DefaultRequestTimeout, "time limit of each request to the Kubernetes API server")
	logging.AddFlag(fs, &o.LogFormat, `"dvcr-cleaner: <message> key=value..." lines`)
}

// Logger is the log on stderr in --log-format; reports go to stdout. One
// logger per run, so that its lines (klog's included) never interleave.
func (o *Options) Logger() *slog.Logger {
	if o.logger == nil {
		o.logger = logging.New(o.Err, o.LogFormat, "dvcr-cleaner: ", nil)
	}
	return o.logger
}

// Config loads the DVCR configuration: --config, else the pod's file,
// else the embedded defaults of dvcr serve (saying so).
func (o *Options) Config() (*config.Config, error) {
	if o.ConfigPath != "" {
		return config.Load(o.ConfigPath)
	}
	if _, err := os.Stat(DefaultConfigPath); err == nil {
		return config.Load(DefaultConfigPath)
	}
	o.Logger().Info(fmt.Sprintf("no --config and no %s: using the embedded defaults of dvcr serve (storage in ./data)", DefaultConfigPath))
	return config.Load("")
}

// RESTConfig is the Kubernetes client configuration (kube.RESTConfig).
func (o *Options) RESTConfig() (*rest.Config, error) {
	return kube.RESTConfig(o.Kubeconfig, o.RequestTimeout)
}

// Output is the -o flag: table (default) or json.
type Output string

// AddOutputFlag registers -o on a command.
func AddOutputFlag(fs *pflag.FlagSet, o *Output) {
	fs.StringVarP((*string)(o), "output", "o", "", "output format: json (default: a table for people)")
}

// Validate rejects unknown formats.
func (o Output) Validate() error {
	switch o {
	case "", "table", "json":
		return nil
	}
	return fmt.Errorf("--output %q: want json or table", string(o))
}

// JSON reports whether JSON output was asked for.
func (o Output) JSON() bool { return o == "json" }

// ErrNotConfirmed: the operator did not confirm, or could not be asked.
var ErrNotConfirmed = errors.New("not confirmed")

// Confirm asks "<question> Confirm? [y/N]" unless yes is set. Without a
// terminal to ask on, it refuses rather than guess.
func Confirm(s Streams, question string, yes bool) error {
	if yes {
		return nil
	}
	if !IsTerminal(s.In) {
		return fmt.Errorf("%w: %s: standard input is not a terminal, pass --yes to confirm", ErrNotConfirmed, question)
	}
	fmt.Fprintf(s.Out, "%s\nConfirm? [y/N] ", question)
	line, _ := bufio.NewReader(s.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNotConfirmed, question)
}

// Terminal is implemented by inputs that know whether they are a terminal
// (tests inject one).
type Terminal interface{ IsTerminal() bool }

// IsTerminal reports whether r is an interactive terminal.
func IsTerminal(r io.Reader) bool {
	switch v := r.(type) {
	case Terminal:
		return v.IsTerminal()
	case *os.File:
		return term.IsTerminal(int(v.Fd()))
	}
	return false
}

// Storage loads the configuration and opens its storage driver, the first
// step of every verb that reads the registry.
func (o *Options) Storage(ctx context.Context) (*config.Config, storagedriver.StorageDriver, error) {
	cfg, err := o.Config()
	if err != nil {
		return nil, nil, err
	}
	driver, err := storage.OpenDriver(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, driver, nil
}

// WriteJSON prints v as indented JSON, the -o json form of every report.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
