package logging

import (
	"log/slog"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// RouteKlog sends client-go's lines (klog: leader election, watch
// warnings, client-side throttling) to l, in its format, instead of klog's
// own "I1204 12:00:00.000000 ..." header. klog is process-wide.
func RouteKlog(l *slog.Logger) {
	klog.SetLogger(logr.FromSlogHandler(l.Handler()))
}
