package source

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
)

// NewTransport returns an HTTP transport trusting the system roots plus the
// PEM certificates in caBundle. Without a bundle it is a plain clone of the
// default transport, so proxies from the environment keep working.
func NewTransport(caBundle []byte) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if len(caBundle) == 0 {
		return t, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(caBundle) {
		return nil, errors.New("CA bundle holds no PEM certificate")
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}
