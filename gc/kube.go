package gc

import (
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

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

// DefaultRequestTimeout bounds each request to the API server.
const DefaultRequestTimeout = 30 * time.Second
