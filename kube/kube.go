// Package kube is how DVCR's commands reach the Kubernetes API server: the
// client configuration found the way kubectl users expect, the time limit
// of each request, and the rate limit of the clients that run for the life
// of dvcr serve. The garbage collector, the provisioning controller, the
// console and the CLIs share it.
package kube

import (
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// DefaultRequestTimeout bounds each request to the API server.
const DefaultRequestTimeout = 30 * time.Second

// NoTimeout is RESTConfig's timeout for clients that watch: a client
// timeout would cut the watches.
const NoTimeout time.Duration = 0

// RESTConfig finds the Kubernetes client configuration the way kubectl
// users expect: an explicit kubeconfig path, then $KUBECONFIG, then the
// in-cluster service account, then ~/.kube/config. timeout bounds each
// request, so that an API server that accepts connections but never answers
// fails the caller instead of hanging it.
func RESTConfig(kubeconfig string, timeout time.Duration) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	} else if os.Getenv(clientcmd.RecommendedConfigPathEnvVar) == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			cfg.Timeout = timeout
			return cfg, nil
		}
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	cfg.Timeout = timeout
	return cfg, nil
}

// RaiseRateLimit lifts client-go's default of 5 requests/s (burst 10) to
// 50/s (burst 100) unless cfg sets a limit of its own: the default queues
// the status writes of a few dozen images, or a replica's Lease renewals
// behind the collector's polling, for seconds; the API server's own
// fairness is the limit that matters.
func RaiseRateLimit(cfg *rest.Config) {
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
}
