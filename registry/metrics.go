package registry

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// replacingRegisterer registers collectors, replacing an already registered
// collector with the same descriptors instead of failing.
//
// Upstream's handlers.NewApp registers its HTTP metrics in Prometheus'
// default registry and panics when they are already there, which they are
// when the application is rebuilt to drop its caches. The rebuilt
// application's metrics take over (counters restart, which Prometheus'
// rate() handles as a reset).
type replacingRegisterer struct {
	prometheus.Registerer
}

func (r replacingRegisterer) Register(c prometheus.Collector) error {
	err := r.Registerer.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		r.Registerer.Unregister(are.ExistingCollector)
		return r.Registerer.Register(c)
	}
	return err
}

func (r replacingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// defaultRegistererMu serializes the temporary swap of the process-wide
// default registerer.
var defaultRegistererMu sync.Mutex

// withReplacingRegisterer runs fn while prometheus.DefaultRegisterer
// replaces duplicates instead of panicking.
func withReplacingRegisterer(fn func()) {
	defaultRegistererMu.Lock()
	defer defaultRegistererMu.Unlock()
	saved := prometheus.DefaultRegisterer
	prometheus.DefaultRegisterer = replacingRegisterer{Registerer: saved}
	defer func() { prometheus.DefaultRegisterer = saved }()
	fn()
}
