package console

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"k8s.io/client-go/rest"
)

// serviceProxy carries registry requests through the API server's proxy to
// DVCR's Service, with the operator's own credentials: the API server's
// RBAC (services/proxy in DVCR's namespace) decides who may download, and
// the console reaches nothing the operator could not. A request for
// https://<svc>.<ns>.svc/v2/... goes to
// <API server>/api/v1/namespaces/<ns>/services/http:<svc>:http/proxy/v2/...
type serviceProxy struct {
	api  *url.URL
	next http.RoundTripper
}

// newServiceProxy builds the transport from the operator's configuration.
func newServiceProxy(kube *rest.Config) (*serviceProxy, error) {
	rt, err := rest.TransportFor(kube)
	if err != nil {
		return nil, fmt.Errorf("the API server's transport: %w", err)
	}
	api, err := url.Parse(kube.Host)
	if err != nil || api.Host == "" {
		api, err = url.Parse("https://" + kube.Host)
		if err != nil {
			return nil, fmt.Errorf("the API server's address %q: %w", kube.Host, err)
		}
	}
	return &serviceProxy{api: api, next: rt}, nil
}

// RoundTrip rewrites a request for a Service's in-cluster name into the
// API server's proxy path for that Service.
func (p *serviceProxy) RoundTrip(req *http.Request) (*http.Response, error) {
	svc, ns, ok := serviceOfHost(req.URL.Hostname())
	if !ok {
		return nil, fmt.Errorf("console: %s is not a Service's name (<service>.<namespace>.svc)", req.URL.Host)
	}
	out := req.Clone(req.Context())
	u := *p.api
	u.Path = path.Join("/", p.api.Path, "api/v1/namespaces", ns, "services", "http:"+svc+":http", "proxy") + req.URL.Path
	u.RawQuery = req.URL.RawQuery
	out.URL, out.Host = &u, ""
	return p.next.RoundTrip(out)
}

// serviceOfHost splits <service>.<namespace>.svc[.<cluster domain>].
func serviceOfHost(host string) (svc, ns string, ok bool) {
	parts := strings.Split(host, ".")
	if len(parts) < 3 || parts[2] != "svc" || parts[0] == "" || parts[1] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}
