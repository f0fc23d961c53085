// Package consolecmd is `dvcr console`: the web console on a loopback port,
// acting with the operator's own kubeconfig identity.
package consolecmd

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/console"
	"github.com/dvcr/dvcr/kube"
	"github.com/dvcr/dvcr/logging"
)

// Streams are the command's output streams.
type Streams struct {
	Out io.Writer
	Err io.Writer
}

type flags struct {
	kubeconfig     string
	listen         string
	configPath     string
	namespace      string
	requestTimeout time.Duration
	registry       string
	insecure       bool
	caFile         string
	authFile       string
	downloadDir    string
	conversions    int
	logFormat      logging.Format
}

// NewCommand returns `dvcr console`.
func NewCommand(streams Streams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve the web console on 127.0.0.1 with your own Kubernetes identity",
		Long: "Serve the web console for cluster and project images on a loopback port. It acts with\n" +
			"the kubeconfig's identity, like kubectl proxy: the API server's RBAC decides what you may do.\n" +
			"Open the printed URL; its token works once. With --config (DVCR's configuration file, where\n" +
			"DVCR's storage and admin socket are reachable) the garbage collection panel works too.\n" +
			"\"Download\" saves a Ready image's disk file as stored; \"Download raw\" converts a qcow2, vmdk or\n" +
			"vdi image to a sparse raw disk first, like qemu-img convert -O raw, in --download-dir, and\n" +
			"serves it when the conversion is complete and verified.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), f, streams) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then in-cluster, then ~/.kube/config)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8089", "loopback address to serve on (port 0: any free port)")
	fs.StringVar(&f.configPath, "config", "", "DVCR configuration file, for the garbage collection panel")
	fs.StringVar(&f.namespace, "dvcr-namespace", "d8-virtualization", "namespace DVCR runs in: \"Run now\" is offered to users who may exec into its pods")
	fs.StringVar(&f.registry, "registry", "", "DVCR's registry as this machine reaches it, for \"Download\" (e.g. 127.0.0.1:5000 of a kubectl port-forward; default: the API server's proxy to the Service named in the image's status.target.registryURL, with your own credentials)")
	fs.BoolVar(&f.insecure, "registry-insecure", false, "reach --registry over plain HTTP")
	fs.StringVar(&f.caFile, "registry-ca-file", "", "CA bundle trusted for --registry besides the system's")
	fs.StringVar(&f.authFile, "registry-auth-file", "", "docker config.json with DVCR's credentials, for \"Download\"")
	fs.StringVar(&f.downloadDir, "download-dir", "", "directory of \"Download raw\"'s temporary files (default: $TMPDIR, else /tmp): the image is converted there to a sparse raw file before the browser gets it, so it needs free space for the image's allocated data (not its virtual size) per conversion running; each file is removed when its download ends")
	fs.IntVar(&f.conversions, "download-conversions", console.DefaultRawConversions, "\"Download raw\" conversions at once (each needs its space in --download-dir); more wait for one to finish")
	fs.DurationVar(&f.requestTimeout, "request-timeout", kube.DefaultRequestTimeout, "time limit of each request to the Kubernetes API server")
	logging.AddFlag(fs, &f.logFormat, `"dvcr console: <message> key=value..."`)
	return cmd
}

func run(ctx context.Context, f *flags, streams Streams) error {
	logger := logging.New(streams.Err, f.logFormat, "dvcr console: ", nil)
	logging.RouteKlog(logger)
	if err := checkLoopback(f.listen); err != nil {
		return err
	}
	restCfg, err := kube.RESTConfig(f.kubeconfig, f.requestTimeout)
	if err != nil {
		return err
	}
	opts := console.Options{Kube: restCfg, DVCRNamespace: f.namespace,
		Registry:    console.Registry{Address: f.registry, Insecure: f.insecure, AuthFile: f.authFile},
		DownloadDir: f.downloadDir, RawConversions: f.conversions}
	if f.caFile != "" {
		if opts.Registry.CABundle, err = os.ReadFile(f.caFile); err != nil {
			return fmt.Errorf("--registry-ca-file: %w", err)
		}
	}
	if f.configPath != "" {
		opts.GC = console.LocalCollector{ConfigPath: f.configPath}
	}
	srv, err := console.New(opts)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", f.listen, err)
	}
	fmt.Fprintf(streams.Out, "DVCR console for the API server %s\nOpen %s\n", restCfg.Host, srv.LoginURL(l.Addr()))
	if f.configPath == "" {
		logger.Info("no --config: the garbage collection panel is off")
	}
	return srv.Serve(ctx, l)
}

// checkLoopback refuses a listen address other than loopback: the console
// carries the operator's credentials, and a session token is all that would
// stand between the network and them.
func checkLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %q: the console serves on a loopback address only (127.0.0.1:PORT); reach it from elsewhere through an SSH tunnel", listen)
}
