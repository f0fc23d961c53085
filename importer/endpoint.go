package importer

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/importer/source"
)

// Endpoint is how a client reaches DVCR's registry: what `dvcr import`
// and `dvcr export` share.
type Endpoint struct {
	Registry  string            // host:port or URL
	Insecure  bool              // plain HTTP
	CABundle  []byte            // PEM roots trusted besides the system's
	AuthFile  string            // docker config file with credentials
	Transport http.RoundTripper // carries the requests instead of the network; nil: one trusting CABundle
	// OnWait is told when the registry answered 503 and the client waits.
	OnWait func(reason string, d time.Duration)
}

// Connect opens a client with the scope the options give (push, or pull
// with PullOnly) on repos; Transport, Insecure, Keychain and OnWait come
// from the endpoint.
func (e Endpoint) Connect(ctx context.Context, repos []string, copts registryclient.Options) (*registryclient.Client, error) {
	copts.Insecure, copts.Transport, copts.OnWait = e.Insecure, e.Transport, e.OnWait
	if copts.Transport == nil {
		t, err := source.NewTransport(e.CABundle)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		copts.Transport = t
	}
	if e.AuthFile != "" {
		kc, err := source.KeychainFromFile(e.AuthFile)
		if err != nil {
			return nil, err
		}
		copts.Keychain = kc
	}
	c, err := registryclient.New(ctx, e.Registry, repos, copts)
	if err != nil {
		return nil, fmt.Errorf("connecting to the registry %s: %w", e.Registry, err)
	}
	return c, nil
}

// WaitNote reports the client's waits on a 503 as notes of the progress.
func WaitNote(note func(phase, msg string), phase string) func(string, time.Duration) {
	return func(reason string, d time.Duration) { note(phase, fmt.Sprintf("%s: waiting %s", reason, d)) }
}
