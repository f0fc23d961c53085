// Package serve implements `dvcr serve`: the registry, its debug endpoint
// (metrics, health), the admin endpoint, the garbage collection and
// verification schedulers and, with cluster access, the provisioning
// controller, all in one process with a graceful shutdown.
package serve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/dvcr/dvcr/admin"
	"github.com/dvcr/dvcr/cluster"
	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/kube"
	"github.com/dvcr/dvcr/logging"
	"github.com/dvcr/dvcr/registry"
	"github.com/dvcr/dvcr/storage"
	"github.com/dvcr/dvcr/verify"
)

// Options are the flags of `dvcr serve`.
type Options struct {
	ConfigPath string
	LogFormat  logging.Format
}

// Streams are the output streams of the command.
type Streams struct {
	Out io.Writer
	Err io.Writer
}

// NewCommand returns the `serve` command.
func NewCommand(streams Streams) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "serve [--config FILE]",
		Short: "Run the registry, the garbage collection scheduler and the admin endpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(opts.ConfigPath)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("log-format") {
				opts.LogFormat = logging.FromFormatter(cfg.Registry.Log.Formatter)
			}
			return Run(cmd.Context(), cfg, NewLogger(streams.Err, opts.LogFormat))
		},
	}
	cmd.Flags().StringVar(&opts.ConfigPath, "config", "", "registry config.yml with a dvcr: section (default: embedded defaults, storage in ./data on 127.0.0.1:5000)")
	logging.AddFlag(cmd.Flags(), &opts.LogFormat, `"dvcr serve: <message> key=value..."; default: the config's log.formatter, json or logstash meaning json`)
	return cmd
}

// logPrefix starts the text log lines of dvcr serve.
const logPrefix = "dvcr serve: "

// NewLogger returns the logger of dvcr serve writing to w in format.
func NewLogger(w io.Writer, format logging.Format) *slog.Logger {
	return logging.New(w, format, logPrefix, nil)
}

// Run serves until ctx ends, then shuts down gracefully: requests in flight
// (uploads included) get up to http.draintimeout (30s when unset) to finish.
func Run(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	// client-go (leader election, watches) logs through klog: the same
	// lines, not klog's own header format.
	logging.RouteKlog(logger)
	srv, err := registry.NewServer(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer srv.Close()
	metrics := gc.NewMetrics()
	srv.Gate().OnChange(metrics.SetReadOnly)
	metrics.SetReadOnly(srv.Gate().ReadOnly())
	collector, err := newCollector(ctx, cfg, srv, metrics)
	if err != nil {
		return err
	}
	verifyMetrics := followVerify(ctx, metrics.Registry, collector.Driver, logger)
	ln, err := listen(cfg)
	if err != nil {
		return err
	}
	errc := make(chan error, 4)
	handler, elector, err := startLeader(ctx, cfg, srv, collector, verifyMetrics, ln.Addr(), logger, errc)
	if err != nil {
		_ = ln.Close()
		return err
	}
	httpServer := &http.Server{Handler: handler, ReadHeaderTimeout: time.Minute}
	go func() { errc <- httpServer.Serve(ln) }()
	// test/dvcrtest reads the address from this line and the debug one.
	logger.Info(fmt.Sprintf("registry listening on %s (config: %s)", ln.Addr(), cfg.Source))

	debugServer, err := startDebug(cfg, srv, metrics, logger, errc)
	if err != nil {
		_ = httpServer.Close()
		return err
	}
	adminServer, err := startAdmin(ctx, cfg, srv, collector, elector, logger, errc)
	if err != nil {
		_ = httpServer.Close()
		return err
	}

	return serveUntil(ctx, errc, cfg, logger, httpServer, debugServer, adminServer)
}

// serveUntil waits until ctx ends or a server fails, then shuts the servers
// down.
func serveUntil(ctx context.Context, errc <-chan error, cfg *config.Config, logger *slog.Logger, servers ...*http.Server) error {
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	return shutdown(cfg, logger, servers...)
}

func shutdown(cfg *config.Config, logger *slog.Logger, servers ...*http.Server) error {
	timeout := cfg.Registry.HTTP.DrainTimeout
	if timeout <= 0 {
		timeout = config.DefaultShutdownTimeout
	}
	logger.Info("shutting down, waiting for requests in flight", "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	for _, s := range servers {
		if s == nil {
			continue
		}
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			_ = s.Close()
		}
	}
	return errors.Join(errs...)
}

func listen(cfg *config.Config) (net.Listener, error) {
	h := cfg.Registry.HTTP
	network := h.Net
	if network == "" {
		network = "tcp"
	}
	if network == "unix" {
		_ = os.Remove(h.Addr) // a stale socket from a killed process
	}
	ln, err := net.Listen(network, h.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.addr %q: %w", h.Addr, err)
	}
	if h.TLS.Certificate == "" {
		if h.TLS.LetsEncrypt.CacheFile != "" {
			_ = ln.Close()
			return nil, fmt.Errorf("http.tls.letsencrypt: not supported by dvcr, use http.tls.certificate and http.tls.key")
		}
		return ln, nil
	}
	tlsConfig, err := tlsConfig(cfg)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return tls.NewListener(ln, tlsConfig), nil
}

func tlsConfig(cfg *config.Config) (*tls.Config, error) {
	t := cfg.Registry.HTTP.TLS
	cert, err := tls.LoadX509KeyPair(t.Certificate, t.Key)
	if err != nil {
		return nil, fmt.Errorf("http.tls.certificate/http.tls.key: %w", err)
	}
	out := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if len(t.ClientCAs) == 0 {
		return out, nil
	}
	pool := x509.NewCertPool()
	for _, ca := range t.ClientCAs {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("http.tls.clientcas: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http.tls.clientcas: %s holds no PEM certificate", ca)
		}
	}
	out.ClientCAs = pool
	out.ClientAuth = tls.RequireAndVerifyClientCert
	return out, nil
}

// startDebug serves http.debug.addr: /debug/health and, when enabled, the
// Prometheus metrics of the registry and of DVCR.
func startDebug(cfg *config.Config, srv *registry.Server, metrics *gc.Metrics, logger *slog.Logger, errc chan<- error) (*http.Server, error) {
	d := cfg.Registry.HTTP.Debug
	if d.Addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/health", func(w http.ResponseWriter, r *http.Request) {
		registry.WriteHealth(w, srv.HealthStatus(r.Context()))
	})
	if d.Prometheus.Enabled {
		path := d.Prometheus.Path
		if path == "" {
			path = "/metrics"
		}
		// The registry's own metrics live in the default registry; the
		// provisioning controller's (workqueue, API client requests) in
		// controller-runtime's.
		gatherers := prometheus.Gatherers{prometheus.DefaultGatherer, metrics.Registry, withoutRuntime{ctrlmetrics.Registry}}
		if root, ok := storage.FilesystemRoot(cfg); ok {
			// The volume's space, where it has a size (not on S3).
			space := prometheus.NewRegistry()
			space.MustRegister(storage.NewSpaceCollector(root))
			gatherers = append(gatherers, space)
		}
		mux.Handle(path, promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{}))
	}
	ln, err := net.Listen("tcp", d.Addr)
	if err != nil {
		return nil, fmt.Errorf("http.debug.addr %q: %w", d.Addr, err)
	}
	s := &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute}
	go func() { errc <- s.Serve(ln) }()
	logger.Info(fmt.Sprintf("debug endpoint listening on %s", ln.Addr()))
	return s, nil
}

// withoutRuntime drops the Go runtime and process families from a
// gatherer: controller-runtime registers its own copies of the ones the
// default registry already serves, and a family served twice fails /metrics.
type withoutRuntime struct{ g prometheus.Gatherer }

func (w withoutRuntime) Gather() ([]*dto.MetricFamily, error) {
	families, err := w.g.Gather()
	kept := families[:0]
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "go_") && !strings.HasPrefix(f.GetName(), "process_") {
			kept = append(kept, f)
		}
	}
	return kept, err
}

// followVerify creates the verification metrics and restores them from the
// recorded results before anything serves them, so that a restart does not
// clear an alert on corrupt blobs; then they follow the runs recorded by
// other processes (dvcr-cleaner verify, the leading replica). Storage that
// does not answer delays the start by 5 s at most: the metrics then start
// from zero and are restored once the results can be read.
func followVerify(ctx context.Context, reg prometheus.Registerer, driver storagedriver.StorageDriver, logger *slog.Logger) *verify.Metrics {
	m := verify.NewMetrics(reg)
	store := verify.NewResultStore(driver)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := m.Refresh(rctx, store); err != nil {
		logger.Warn("verify metrics not restored from the recorded results yet", "err", err)
	}
	go m.Follow(ctx, store, verify.RefreshEvery, logging.Component(logger, "verify (metrics)", false))
	return m
}

// startAdmin serves the admin endpoint on dvcr.adminSocket (mode 0600).
func startAdmin(ctx context.Context, cfg *config.Config, srv *registry.Server, collector *gc.Collector, elector *cluster.Elector, logger *slog.Logger, errc chan<- error) (*http.Server, error) {
	ln, err := admin.Listen(cfg.DVCR.AdminSocket)
	if err != nil {
		return nil, err
	}
	b := &backend{ctx: ctx, srv: srv, driver: collector.Driver, collector: collector, elector: elector, namespace: cfg.DVCR.Cluster.Namespace}
	s := &http.Server{Handler: admin.Handler(b), ReadHeaderTimeout: time.Minute}
	go func() { errc <- s.Serve(ln) }()
	logger.Info(fmt.Sprintf("admin endpoint listening on %s", cfg.DVCR.AdminSocket))
	return s, nil
}

// newCollector builds the garbage collector of this server, armed with the
// test hooks of the environment (gc.FaultEnv, gc.PauseEnv, gc.HoldEnv). The
// cluster is reached through the in-cluster service account, or
// $KUBECONFIG.
func newCollector(ctx context.Context, cfg *config.Config, srv *registry.Server, metrics *gc.Metrics) (*gc.Collector, error) {
	hooks, err := gc.TestHooksFrom(os.Getenv)
	if err != nil {
		return nil, err
	}
	live := &gc.Live{Gate: srv.Gate(), Condemned: srv.Condemned(), ResetCaches: srv.ResetCaches, Driver: srv.Driver()}
	c, err := gc.NewCollector(ctx, cfg, live, func() (*rest.Config, error) {
		return kube.RESTConfig("", kube.DefaultRequestTimeout)
	})
	if err != nil {
		return nil, err
	}
	c.Metrics, c.Hooks = metrics, hooks
	return c, nil
}
