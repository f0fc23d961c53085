package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/health"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/distribution/distribution/v3/registry/handlers"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	// Storage drivers and access controllers linked into DVCR.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/auth/token"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/logging"
	"github.com/dvcr/dvcr/storage"
	"github.com/dvcr/dvcr/storage/drivers"
)

// Server is the embedded distribution registry with DVCR's middleware. It is
// a plain http.Handler; the caller owns listeners and the process lifetime.
type Server struct {
	log     *slog.Logger // the registry's lines (component "registry")
	access  *slog.Logger // the access records (log.accesslog)
	cfg     *config.Config
	ctx     context.Context
	gate    *Gate
	health  *health.Registry
	first   *handlers.App // runs the health checks; lives as long as the server
	current atomic.Pointer[appInstance]
	handler http.Handler
	// driver is the one storage driver of the process: every build of the
	// application and the garbage collector use it.
	driver storagedriver.StorageDriver
	// condemned is what a garbage collection run deletes after its window.
	condemned *Condemned
	// appConfig is the registry configuration with the storage section
	// pointing at driver and the auth section wrapped by inProcessAuth.
	appConfig *configuration.Configuration
}

// appInstance is one build of the distribution application. Requests hold
// the read lock while they are served so that a retired instance is shut
// down only after its last request.
type appInstance struct {
	app     *handlers.App
	mu      sync.RWMutex
	retired bool
}

// NewServer builds the registry from cfg. Upstream panics on bad
// configuration; those panics come back here as errors wrapping
// ErrRegistrySetup.
//
// The registry logs to logger: the embedded registry's logrus lines, the
// access log and DVCR's own lines, at the config's log.level.
func NewServer(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*Server, error) {
	s := &Server{
		log:       registryLogger(cfg, logger),
		access:    logging.Component(logger, "access", true),
		cfg:       cfg,
		ctx:       ctx,
		gate:      NewGate(config.DefaultRetryAfter),
		health:    health.NewRegistry(),
		condemned: &Condemned{},
	}
	driver, err := drivers.Open(ctx, cfg.Registry.Storage)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRegistrySetup, err)
	}
	if _, ok := storage.FilesystemRoot(cfg); ok {
		// Writes failing for lack of space are answered 507 (spaceGuard).
		driver = storage.WatchSpace(driver)
	}
	s.driver = driver
	appConfig := *cfg.Registry
	appConfig.Storage = drivers.Share(cfg.Registry.Storage, driver)
	appConfig.Auth = wrapAuth(cfg.Registry.Auth)
	s.appConfig = &appConfig
	app, err := s.newApp()
	if err != nil {
		return nil, err
	}
	app.RegisterHealthChecks(s.health)
	s.first = app
	s.current.Store(&appInstance{app: app})
	if cfg.StartReadOnly {
		// Held for the life of the process: storage.maintenance.readonly.
		s.gate.acquire("storage.maintenance.readonly is enabled")
	}
	s.handler = s.buildHandler()
	return s, nil
}

func (s *Server) newApp() (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrRegistrySetup, s.cfg.Source, r)
		}
	}()
	withReplacingRegisterer(func() { app = handlers.NewApp(s.ctx, s.appConfig) })
	return app, nil
}

func (s *Server) buildHandler() http.Handler {
	prefix := s.cfg.Registry.HTTP.Prefix
	var h http.Handler = http.HandlerFunc(s.serveApp)
	h = (&condemnedGuard{set: s.condemned, router: v2.RouterWithPrefix(prefix)}).Middleware(h)
	root, _ := storage.FilesystemRoot(s.cfg)
	h = (&spaceGuard{root: root, driver: s.driver, log: s.log}).Middleware(h)
	h = newUploadOrder().Middleware(h)
	namer := NewPolicy(true, prefix)
	s.gate.repository = func(r *http.Request) string {
		name, _ := namer.repositoryName(r)
		return name
	}
	h = s.gate.Middleware(h)
	h = NewPolicy(s.cfg.DVCR.Repositories.AllowUnmanaged, prefix).Middleware(h)
	h = alive(h)
	// Health wraps alive, as upstream does: probes of "/" fail while the
	// storage driver is unhealthy.
	h = s.healthMiddleware(h)
	if !s.cfg.Registry.Log.AccessLog.Disabled {
		h = accessLog(s.access, h)
	}
	return recoverPanics(s.log, h)
}

// Driver is the storage driver the registry serves from.
func (s *Server) Driver() storagedriver.StorageDriver { return s.driver }

// Handler is the registry's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Gate is the write gate of this registry.
func (s *Server) Gate() *Gate { return s.gate }

// Condemned is the set a garbage collection run publishes at the end of
// its window and deletes afterwards.
func (s *Server) Condemned() *Condemned { return s.condemned }

// Config is the configuration the server was built from.
func (s *Server) Config() *config.Config { return s.cfg }

// HealthStatus maps each failing health check to its error; empty when healthy.
func (s *Server) HealthStatus(ctx context.Context) map[string]string {
	return s.health.CheckStatus(ctx)
}

func (s *Server) serveApp(w http.ResponseWriter, r *http.Request) {
	for {
		inst := s.current.Load()
		inst.mu.RLock()
		if inst.retired {
			inst.mu.RUnlock()
			continue
		}
		defer inst.mu.RUnlock()
		inst.app.ServeHTTP(w, r)
		return
	}
}

// ResetCaches drops every cache of the registry application (the blob
// descriptor cache above all) by building a fresh application on the same
// storage and configuration. Needed after blobs were deleted underneath the
// registry: a stale cache entry would make clients skip uploading a blob that
// no longer exists. Requests already running finish on the old application.
func (s *Server) ResetCaches() error {
	app, err := s.newApp()
	if err != nil {
		return err
	}
	old := s.current.Swap(&appInstance{app: app})
	go s.retire(old)
	return nil
}

func (s *Server) retire(inst *appInstance) {
	inst.mu.Lock()
	inst.retired = true
	inst.mu.Unlock()
	if inst.app != s.first {
		_ = inst.app.Shutdown()
	}
}

// Close shuts the registry applications down (upload purger, health checks).
func (s *Server) Close() error {
	cur := s.current.Load()
	err := cur.app.Shutdown()
	if cur.app != s.first {
		err = s.first.Shutdown()
	}
	return err
}

func (s *Server) healthMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing := s.health.CheckStatus(r.Context()); len(failing) > 0 {
			WriteHealth(w, failing)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WriteHealth answers a health request: 200 and {} when checks is empty,
// 503 and the failing checks otherwise.
func WriteHealth(w http.ResponseWriter, checks map[string]string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if len(checks) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(checks)
}

// alive answers "/" with 200 so probes and clients see the server is up.
func alive(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
			return
		}
		next.ServeHTTP(w, r)
	})
}
