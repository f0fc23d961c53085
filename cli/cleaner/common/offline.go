package common

import (
	"fmt"
	"net"
	"time"

	"github.com/dvcr/dvcr/config"
)

// EnsureNoServer guards offline mode: changing storage behind a registry
// that is serving would race its writes and leave its caches stale. When
// the admin socket did not answer but something listens on http.addr, it
// refuses and says why.
func EnsureNoServer(cfg *config.Config) error {
	addr := cfg.Registry.HTTP.Addr
	if cfg.Registry.HTTP.Net == "unix" || addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return nil // no fixed port to probe
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), time.Second)
	if err != nil {
		return nil
	}
	conn.Close()
	return fmt.Errorf("a registry answers on http.addr %s but not on dvcr.adminSocket %s: refusing to change storage behind a running registry (run dvcr-cleaner inside the DVCR container, with the server's config)",
		addr, cfg.DVCR.AdminSocket)
}
