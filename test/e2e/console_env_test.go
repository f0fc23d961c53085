package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// consoleProc is a `dvcr console` process started by a test.
type consoleProc struct {
	URL   string // the login URL it printed, token included
	Base  string // http://127.0.0.1:PORT
	cmd   *exec.Cmd
	lines chan string
}

var openLine = regexp.MustCompile(`Open (http://\S+)`)

// startConsole runs bin/dvcr console with args on a free loopback port and
// returns once it printed its URL; it is stopped when the test ends.
func startConsole(t *testing.T, args ...string) *consoleProc {
	t.Helper()
	bin := dvcrtest.Binary(t, "dvcr")
	cmd := exec.Command(bin, append([]string{"console", "--listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &consoleProc{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("dvcr console exited before printing its URL:\n%s", stderr.String())
			}
			if m := openLine.FindStringSubmatch(line); m != nil {
				p.URL = m[1]
				u, err := url.Parse(p.URL)
				if err != nil {
					t.Fatal(err)
				}
				p.Base = u.Scheme + "://" + u.Host
				return p
			}
		case <-deadline:
			t.Fatalf("dvcr console printed no URL within 30s:\n%s", stderr.String())
		}
	}
}

// browser is a headless Debian chromium driven through chromedp.
type browser struct {
	alloc context.Context // the browser's first context
}

// chromiumPath is Debian's chromium, installed by hack/deps.sh.
const chromiumPath = "/usr/bin/chromium"

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the console tests need Debian's chromium (apt-get install -y chromium, done by hack/deps.sh): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Headless,
		chromedp.WindowSize(1280, 800), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	// The first context starts the browser; pages open their own browser
	// contexts (separate cookie jars) in it.
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return &browser{alloc: ctx}
}

// page opens a tab in its own browser context (its own cookies), logs in
// through the console's URL and waits until the live table is up.
func (b *browser) page(t *testing.T, c *consoleProc) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.alloc, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 10*time.Minute)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Do(ctx, chromedp.Navigate(c.URL), chromedp.WaitVisible("#live.on")); err != nil {
		t.Fatalf("opening the console: %v", err)
	}
	return ctx
}

// run runs browser actions, failing the test with what was being done.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(step, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// await evaluates an expression that yields a promise and returns what the
// promise resolves to.
func await[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// screenshot writes the page (quality 100: PNG; lower gives JPEG) as <repo>/_artifacts/console/<name>.png for a
// reviewer to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join(dvcrtest.RepoRoot(t), "_artifacts", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// rowState is what the table shows of one image.
type rowState struct {
	Phase    string `json:"phase"`
	Progress string `json:"progress"`
}

// row reads the table row of name, or zero when it has none.
func row(t *testing.T, ctx context.Context, name string) rowState {
	t.Helper()
	return eval[rowState](t, ctx, fmt.Sprintf(`(() => {
		const tr = document.querySelector('#images tbody tr[data-name=%q]');
		return tr ? {phase: tr.dataset.phase, progress: tr.querySelector('.progress').textContent} : {phase: "", progress: ""};
	})()`, name))
}

// watchRow polls the table row of name until it shows Ready and returns
// every distinct progress shown while the image was Provisioning. With shot,
// the first such moment is kept as a screenshot of that name.
func watchRow(t *testing.T, ctx context.Context, name string, timeout time.Duration, shot ...string) []string {
	t.Helper()
	var seen []string
	deadline := time.Now().Add(timeout)
	last := rowState{}
	for time.Now().Before(deadline) {
		st := row(t, ctx, name)
		if st.Phase == "Provisioning" && st.Progress != "" && (len(seen) == 0 || seen[len(seen)-1] != st.Progress) {
			seen = append(seen, st.Progress)
			if len(shot) > 0 && progressBetween(st.Progress) {
				screenshot(t, ctx, shot[0])
				shot = nil
			}
		}
		if st.Phase == "Ready" {
			return seen
		}
		if st.Phase == "Failed" {
			t.Fatalf("%s failed in the table", name)
		}
		last = st
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not Ready in the table within %s: last %+v, progress seen %v", name, timeout, last, seen)
	return nil
}

// createThroughForm opens "Create image", picks source, fills the name and
// the field of that source, and submits.
func createThroughForm(t *testing.T, ctx context.Context, source, name, field, value string) {
	t.Helper()
	run(t, ctx, "opening the create menu",
		chromedp.Click("#create-button"),
		chromedp.Click(fmt.Sprintf(`#create-menu button[data-source=%q]`, source)),
		chromedp.WaitVisible("#create-dialog[open]"),
		chromedp.SendKeys("#create-name", name))
	switch field {
	case "#create-file":
		run(t, ctx, "choosing the file", chromedp.SetUploadFiles(field, []string{value}))
	case "":
	default:
		run(t, ctx, "filling "+field, chromedp.SendKeys(field, value))
	}
	run(t, ctx, "submitting", chromedp.Click("#create-submit"))
}

// slowRegistry is a reverse proxy to a registry that sends blob bodies at
// rate bytes per second, so an import from it runs long enough for its
// progress to be seen.
func slowRegistry(t *testing.T, target string, rate int) string {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if strings.Contains(resp.Request.URL.Path, "/blobs/") {
			resp.Body = &throttled{r: resp.Body, rate: rate}
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type throttled struct {
	r    io.ReadCloser
	rate int
}

func (t *throttled) Read(p []byte) (int, error) {
	const piece = 64 << 10
	if len(p) > piece {
		p = p[:piece]
	}
	n, err := t.r.Read(p)
	time.Sleep(time.Duration(float64(n) / float64(t.rate) * float64(time.Second)))
	return n, err
}

func (t *throttled) Close() error { return t.r.Close() }
