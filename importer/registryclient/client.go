// Package registryclient speaks the OCI distribution API to one registry,
// for what an import needs: chunked blob uploads that survive a read-only
// window, small blob uploads, cross-repository mounts, manifests.
//
// Every write waits out `503 Service Unavailable` (DVCR's garbage collection
// window) by honouring Retry-After and retrying the same request, telling
// the caller through Options.OnWait. Authentication (basic or bearer) is
// go-containerregistry's transport.
package registryclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Options tune a Client.
type Options struct {
	// Insecure speaks plain HTTP (loopback registries are tried with HTTP
	// anyway, as go-containerregistry does).
	Insecure bool
	// Transport carries the requests (TLS roots, proxies); default: a clone
	// of http.DefaultTransport.
	Transport http.RoundTripper
	// Keychain resolves credentials; nil means anonymous.
	Keychain authn.Keychain
	// OnWait is told why and how long the client waits before retrying a
	// request the registry refused with 503.
	OnWait func(reason string, wait time.Duration)
	// ChunkSize is the size of one PATCH of a chunked upload (default 8 MiB).
	ChunkSize int
	// MaxWait caps one Retry-After wait (default 30s).
	MaxWait time.Duration
	// PullOnly asks for pull scope only (a reader such as dvcr export).
	PullOnly bool
}

// DefaultChunkSize is small enough that a chunk is done well within a GC
// drain timeout, and large enough to keep per-request overhead low.
const DefaultChunkSize = 8 << 20

// Client talks to one registry with the scopes it was created for.
type Client struct {
	host string
	base *url.URL
	http *http.Client
	opts Options
}

// New pings the registry and authenticates for the given repository scopes
// (push and pull on each, or pull with Options.PullOnly).
func New(ctx context.Context, registry string, repos []string, opts Options) (*Client, error) {
	host, scheme := splitScheme(registry)
	if scheme == "http" {
		opts.Insecure = true
	}
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", registry, err)
	}
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	auth, err := resolveAuth(ctx, opts.Keychain, reg)
	if err != nil {
		return nil, err
	}
	action := transport.PushScope
	if opts.PullOnly {
		action = transport.PullScope
	}
	scopes := make([]string, 0, len(repos))
	for _, r := range repos {
		scopes = append(scopes, reg.Repo(r).Scope(action))
	}
	rt, err := transport.NewWithContext(ctx, reg, auth, base, scopes)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", host, err)
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 30 * time.Second
	}
	// The scheme here is rewritten by the transport to what the ping found.
	return &Client{
		host: host,
		base: &url.URL{Scheme: "https", Host: reg.RegistryStr()},
		http: &http.Client{Transport: rt},
		opts: opts,
	}, nil
}

// Host is the registry's host[:port].
func (c *Client) Host() string { return c.host }

func splitScheme(registry string) (host, scheme string) {
	for _, s := range []string{"http", "https"} {
		if rest, ok := strings.CutPrefix(registry, s+"://"); ok {
			return strings.TrimSuffix(rest, "/"), s
		}
	}
	return registry, ""
}

func resolveAuth(ctx context.Context, kc authn.Keychain, reg name.Registry) (authn.Authenticator, error) {
	if kc == nil {
		return authn.Anonymous, nil
	}
	auth, err := authn.Resolve(ctx, kc, reg)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", reg.RegistryStr(), err)
	}
	return auth, nil
}

// url resolves a path or a Location header against the registry.
func (c *Client) url(ref string) (*url.URL, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("registry returned a bad location %q: %w", ref, err)
	}
	return c.base.ResolveReference(u), nil
}

// request builds one attempt of a request; do calls it again for a retry,
// so a body must be fresh each time.
type request func() (*http.Request, error)

// do sends a request, waiting and retrying while the registry answers 503.
// Any status not in want is returned as an *APIError.
func (c *Client) do(ctx context.Context, build request, want ...int) (*http.Response, error) {
	for {
		req, err := build()
		if err != nil {
			return nil, err
		}
		resp, err := c.http.Do(req.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		for _, w := range want {
			if resp.StatusCode == w {
				return resp, nil
			}
		}
		apiErr := readAPIError(req, resp)
		if resp.StatusCode != http.StatusServiceUnavailable {
			return nil, apiErr
		}
		if err := c.wait(ctx, apiErr, resp.Header.Get("Retry-After")); err != nil {
			return nil, err
		}
	}
}

// wait sleeps for Retry-After (bounded by MaxWait, at least one second).
func (c *Client) wait(ctx context.Context, apiErr *APIError, retryAfter string) error {
	d := parseRetryAfter(retryAfter, time.Now())
	d = min(max(d, time.Second), c.opts.MaxWait)
	if c.opts.OnWait != nil {
		reason := apiErr.Detail
		if reason == "" {
			reason = "registry unavailable (HTTP 503)"
		}
		c.opts.OnWait(reason, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %s, gave up: %w", ErrUnavailable, apiErr.Detail, ctx.Err())
	case <-t.C:
		return nil
	}
}

// parseRetryAfter reads seconds or an HTTP date; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// readAPIError consumes and closes the body of a failed response.
func readAPIError(req *http.Request, resp *http.Response) *APIError {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode}
	var oci struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &oci) == nil && len(oci.Errors) > 0 {
		msgs := make([]string, 0, len(oci.Errors))
		for _, oe := range oci.Errors {
			e.Codes = append(e.Codes, oe.Code)
			if oe.Message != "" {
				msgs = append(msgs, oe.Message)
			}
		}
		e.Detail = strings.Join(msgs, "; ")
	} else {
		e.Detail = strings.TrimSpace(string(body))
		if len(e.Detail) > 200 {
			e.Detail = e.Detail[:200] + "..."
		}
	}
	return e
}

// drain discards what is left of a successful response's body so the
// connection is reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
}
