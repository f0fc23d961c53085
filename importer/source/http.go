package source

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
)

// httpSource downloads a URL with GET; the Body resumes dropped connections
// (see resume.go).
type httpSource struct {
	url    *url.URL      // without userinfo
	user   *url.Userinfo // sent as basic auth, kept out of messages
	client *http.Client
	opts   Options
}

func newHTTP(spec string, opts Options) (*httpSource, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("bad URL %s: %w", redactSpec(spec), err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("bad URL %s: no host", redactSpec(spec))
	}
	t, err := NewTransport(opts.CABundle)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redactSpec(spec), err)
	}
	s := &httpSource{url: u, user: u.User, client: &http.Client{Transport: t}, opts: opts}
	u.User = nil
	return s, nil
}

func (s *httpSource) String() string { return s.url.String() }

// Open sends the first GET and hands the response body to a resumer.
func (s *httpSource) Open(ctx context.Context) (*Stream, error) {
	resp, err := s.get(ctx, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		resp.Body.Close()
		return nil, s.statusError(resp)
	}
	name := responseName(resp)
	return &Stream{Body: newResumer(ctx, s, resp), Name: name, Size: resp.ContentLength}, nil
}

// get sends a GET with extra headers. Credentials are set per request rather
// than left in the URL so that transport errors never print them; the
// client drops them on redirects to another host.
func (s *httpSource) get(ctx context.Context, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	// Ask for the bytes as stored: a transparent gzip decode would change
	// both the content and the meaning of Content-Length and Range.
	req.Header.Set("Accept-Encoding", "identity")
	if s.user != nil {
		pass, _ := s.user.Password()
		req.SetBasicAuth(s.user.Username(), pass)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error repeats the method and URL; keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("GET %s: %w", s, err)
	}
	return resp, nil
}

// statusError names the status and the URL that answered it; the final
// URL after redirects is what the user needs to look at.
func (s *httpSource) statusError(resp *http.Response) error {
	where := s.String()
	if resp.Request != nil && resp.Request.URL.String() != where {
		where = fmt.Sprintf("%s (redirected to %s)", where, stripUser(resp.Request.URL))
	}
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		return fmt.Errorf("%w: GET %s: %s", ErrNotFound, where, resp.Status)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: GET %s: %s", ErrUnauthorized, where, resp.Status)
	}
	return fmt.Errorf("GET %s: unexpected status %s", where, resp.Status)
}

// responseName prefers the server's Content-Disposition filename and falls
// back to the last element of the final URL's path.
func responseName(resp *http.Response) string {
	if cd := resp.Header.Get("Content-Disposition"); cd != "" {
		if _, params, err := mime.ParseMediaType(cd); err == nil && params["filename"] != "" {
			return SanitizeName(params["filename"])
		}
	}
	if resp.Request != nil {
		return SanitizeName(resp.Request.URL.Path)
	}
	return DefaultName
}

func stripUser(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
