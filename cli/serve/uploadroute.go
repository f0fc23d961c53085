package serve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dvcr/dvcr/cluster"
	"github.com/dvcr/dvcr/config"
)

// forwardedHeader marks an upload a follower passed on, so that a replica
// that is no longer the leader answers 503 instead of passing it again.
const forwardedHeader = "X-DVCR-Forwarded-By"

// leaderUploads serves /upload/ on every replica: the provisioning
// controller waiting for the upload runs on the leader, so a follower
// streams the request to it (the body is never held) and streams back the
// answer.
type leaderUploads struct {
	local     http.Handler
	rs        *replicaSet
	transport http.RoundTripper
}

func newLeaderUploads(cfg *config.Config, local http.Handler, rs *replicaSet) (http.Handler, error) {
	if rs == nil {
		return local, nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.Registry.HTTP.TLS.Certificate != "" {
		tc, err := peerTLS(cfg.Registry.HTTP.TLS.Certificate)
		if err != nil {
			return nil, err
		}
		t.TLSClientConfig = tc
	}
	return &leaderUploads{local: local, rs: rs, transport: t}, nil
}

func (u *leaderUploads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u.rs.elector.IsLeader() {
		u.local.ServeHTTP(w, r)
		return
	}
	unavailable := func(msg string) {
		w.Header().Set("Retry-After", strconv.Itoa(int(config.DefaultRetryAfter.Seconds())))
		http.Error(w, msg, http.StatusServiceUnavailable)
	}
	if by := r.Header.Get(forwardedHeader); by != "" {
		unavailable("upload forwarded by " + by + " to a replica that no longer leads; retry")
		return
	}
	leader := u.rs.elector.Leader()
	if leader == "" {
		unavailable("no replica leads yet; retry")
		return
	}
	target, err := u.rs.address(r.Context(), leader)
	if err != nil {
		unavailable(err.Error())
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set(forwardedHeader, u.rs.settings.Name)
		},
		Transport:     u.transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // its text holds the URL, and the URL the token
			}
			u.rs.logger.Warn("upload: forwarding to the leader", "leader", leader, "err", err)
			unavailable(fmt.Sprintf("forwarding the upload to the leader %s: %v", leader, err))
		},
	}
	proxy.ServeHTTP(w, r)
}

// address is the URL the replica name published in its Lease.
func (rs *replicaSet) address(ctx context.Context, name string) (*url.URL, error) {
	lease, err := rs.leases.Get(ctx, cluster.ReplicaPrefix+name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the address of the leader %s: %w", name, err)
	}
	addr := lease.Annotations[cluster.AnnotationAddress]
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("the leader %s publishes no usable address (%q)", name, addr)
	}
	return u, nil
}

// peerTLS trusts exactly the registry's own certificate, which every
// replica serves, under the first name it carries: replicas reach each
// other by pod IP, which the certificate does not name.
func peerTLS(certFile string) (*tls.Config, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("http.tls.certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("http.tls.certificate %s: no PEM block", certFile)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("http.tls.certificate %s: %w", certFile, err)
	}
	name := leaf.Subject.CommonName
	if len(leaf.DNSNames) > 0 {
		name = leaf.DNSNames[0]
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}, nil
}
