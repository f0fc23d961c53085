package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/kube"
	"github.com/dvcr/dvcr/provisioning"
	"github.com/dvcr/dvcr/provisioning/upload"
	"github.com/dvcr/dvcr/registry"
)

// uploadPrefix is where the upload endpoint lives on the registry's listener.
const uploadPrefix = "/upload/"

// startProvisioning builds the controller for ClusterVirtualImage and
// VirtualImage and returns the registry's handler with the upload endpoint
// beside /v2/, and the function that runs the controller until its context
// ends (the leader runs it: leader.go). With provisioning off it returns
// the registry's handler and a no-op.
func startProvisioning(ctx context.Context, cfg *config.Config, srv *registry.Server, addr net.Addr, rs *replicaSet, logger *slog.Logger, errc chan<- error) (http.Handler, func(context.Context), error) {
	p := cfg.DVCR.Provisioning
	if !p.Enabled {
		return srv.Handler(), func(context.Context) {}, nil
	}
	uploads, err := upload.NewHandler(upload.Options{
		SpoolDir:   filepath.Join(workDir(cfg), "uploads"),
		ReadOnly:   srv.Gate().ReadOnly,
		RetryAfter: config.DefaultRetryAfter,
		Logger:     logger,
	})
	if err != nil {
		return nil, nil, err
	}
	ctl, err := newController(cfg, srv, addr, uploads, logger)
	if err != nil {
		return nil, nil, err
	}
	run := func(ctx context.Context) {
		if err := ctl.Start(ctx); err != nil {
			errc <- fmt.Errorf("provisioning: %w", err)
		}
	}
	go sweepUploads(ctx, uploads, logger)
	logger.Info("provisioning ClusterVirtualImages and VirtualImages", "concurrency", p.Concurrency, "uploads", uploadPrefix)
	routed, err := newLeaderUploads(cfg, uploads, rs)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(uploadPrefix, routed)
	mux.Handle("/", srv.Handler())
	return mux, run, nil
}

// newController is the provisioning controller of the registry srv
// serving at addr, with the uploads' handler.
func newController(cfg *config.Config, srv *registry.Server, addr net.Addr, uploads *upload.Handler, logger *slog.Logger) (*provisioning.Controller, error) {
	p := cfg.DVCR.Provisioning
	rc, err := kube.RESTConfig("", kube.NoTimeout)
	if err != nil {
		return nil, fmt.Errorf("dvcr.provisioning.enabled: %w", err)
	}
	tmp := filepath.Join(workDir(cfg), "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("dvcr.provisioning: %w", err)
	}
	return provisioning.New(provisioning.Options{
		RESTConfig:    rc,
		Concurrency:   p.Concurrency,
		RegistryHost:  cfg.DVCR.RegistryHost,
		RegistryURL:   firstNonEmpty(p.RegistryURL, cfg.DVCR.RegistryHost),
		Registry:      srv.Transport(),
		Uploads:       uploads,
		InClusterURL:  firstNonEmpty(p.Upload.InClusterURL, defaultUploadURL(cfg, addr)),
		ExternalURL:   p.Upload.ExternalURL,
		UploadTimeout: p.Upload.Timeout,
		TempDir:       tmp,
		Logger:        logger,
	})
}

// sweepUploads removes the spool files of uploads nobody waits for any more
// (their resource was deleted while DVCR was down): first once the
// controller has had time to register the tokens still waiting, then hourly.
func sweepUploads(ctx context.Context, uploads *upload.Handler, logger *slog.Logger) {
	wait := 10 * time.Minute
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if n, err := uploads.Sweep(); err != nil {
			logger.Error("upload: sweeping the spool", "err", err)
		} else if n > 0 {
			logger.Info("upload: removed abandoned upload spool files", "files", n)
		}
		wait = time.Hour
	}
}

// workDir holds upload spools and temporary files: on the storage volume
// beside the registry's tree (distribution only uses docker/ under its
// root), or in the temporary directory for other drivers.
func workDir(cfg *config.Config) string {
	if fs, ok := cfg.Registry.Storage["filesystem"]; ok {
		if root, ok := fs["rootdirectory"].(string); ok && root != "" {
			return filepath.Join(root, "_dvcr")
		}
	}
	return filepath.Join(os.TempDir(), "dvcr")
}

// defaultUploadURL is http://<listening address>/upload, with a wildcard
// address replaced by the loopback one.
func defaultUploadURL(cfg *config.Config, addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/upload"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.Registry.HTTP.TLS.Certificate != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + strings.TrimSuffix(uploadPrefix, "/")
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
