package registry

import (
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/logging"
)

// registryLogger is the logger of the registry's lines: the process's
// logger at the config's log.level (as upstream's lines were; DVCR's own
// lines keep the process's level) with its log.fields; the embedded
// registry's logrus lines are routed into it.
func registryLogger(cfg *config.Config, logger *slog.Logger) *slog.Logger {
	logCfg := cfg.Registry.Log
	level := logging.ParseLevel(string(logCfg.Level))
	logger = logging.Component(logging.WithLevel(logger, level), "registry", true)
	fields := logCfg.Fields
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		logger = logger.With(k, fields[k])
	}
	logging.RouteLogrus(logger, level)
	return logger
}

// accessLog writes a record per request answered (the config's log.accesslog),
// in the process's log format rather than upstream's Apache lines on stdout.
func accessLog(access *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		access.Info(fmt.Sprintf("%s %s %d", r.Method, r.URL.RequestURI(), rec.answered()),
			"bytes", rec.written, "took", time.Since(start).Round(time.Microsecond),
			"remote", r.RemoteAddr, "agent", r.UserAgent())
	})
}

// recoverPanics answers 500 to a request whose handler panicked, and logs
// it, instead of dropping the connection.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error(fmt.Sprintf("panic serving %s %s", r.Method, r.URL.Path), "err", v)
				http.Error(w, "internal server error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
