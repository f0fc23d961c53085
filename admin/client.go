package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Client talks to the admin endpoint of a running dvcr serve.
type Client struct {
	Socket string
	http   *http.Client
}

// Dial returns a client when a dvcr serve answers on socket, or an error
// wrapping ErrNotRunning when none does (no socket, or a stale one).
func Dial(ctx context.Context, socket string) (*Client, error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, fmt.Errorf("%w (%s: %w)", ErrNotRunning, socket, err)
	}
	c := &Client{Socket: socket, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Status(pingCtx); err != nil {
		return nil, fmt.Errorf("%w (%s: %w)", ErrNotRunning, socket, err)
	}
	return c, nil
}

// Status asks the server for its state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, PathStatus, http.StatusOK, &st)
	return st, err
}

// DeleteRepository removes a repository through the server.
func (c *Client) DeleteRepository(ctx context.Context, path string) error {
	return c.do(ctx, http.MethodDelete, PathRepositories+strings.TrimPrefix(path, "/"), http.StatusNoContent, nil)
}

// GCResults returns the JSON records of the last runs.
func (c *Client) GCResults(ctx context.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.do(ctx, http.MethodGet, PathGCResults, http.StatusOK, &raw)
	return raw, err
}

// RunGC starts a run and calls progress for each progress line; it returns
// the run's record and, when the run failed, an error with its message.
// progress may be nil.
func (c *Client) RunGC(ctx context.Context, trigger string, progress func(string)) (json.RawMessage, error) {
	if progress == nil {
		progress = func(string) {}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://dvcr"+PathGCRun+"?trigger="+url.QueryEscape(trigger), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("admin: bad event %q: %w", sc.Text(), err)
		}
		switch {
		case ev.Progress != "":
			progress(ev.Progress)
		case ev.Error != "":
			return ev.Result, errors.New(ev.Error)
		case ev.Result != nil:
			return ev.Result, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("admin: reading run events: %w", err)
	}
	return nil, errors.New("admin: the server closed the stream before the run ended (was dvcr serve stopped?)")
}

func (c *Client) do(ctx context.Context, method, path string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://dvcr"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return readError(resp)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// RemoteError is an error the server answered with.
type RemoteError struct {
	Status  int
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

func readError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &RemoteError{Status: resp.StatusCode, Message: e.Error}
	}
	return &RemoteError{Status: resp.StatusCode, Message: fmt.Sprintf("admin: %s: %s", resp.Status, strings.TrimSpace(string(body)))}
}
