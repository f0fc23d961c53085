package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// TestConsole drives `dvcr console` with a real browser (Debian's headless
// chromium) against a real API server and a dvcr serve with provisioning:
// the seed's three "…в веб-интерфейсе" recipes through the form, the API
// server's refusal for a user RBAC forbids, delete, the GC panel, and the
// session rules. Screenshots go to _artifacts/console/.
func TestConsole(t *testing.T) {
	e := newProvEnv(t, "  gc:\n    gracePeriod: 0s\n")
	admin := startConsole(t, "--kubeconfig", e.kubeconfig, "--config", e.srv.ConfigPath, "--dvcr-namespace", "default")
	b := newBrowser(t)
	ctx := b.page(t, admin)
	screenshot(t, ctx, "01-empty-list")

	t.Run("session required", func(t *testing.T) { testConsoleSession(t, ctx, admin) })
	t.Run("name checked before submit", func(t *testing.T) { testConsoleNameCheck(t, ctx, e) })
	t.Run("from HTTP", func(t *testing.T) { testConsoleHTTP(t, ctx, e) })
	t.Run("from container image", func(t *testing.T) { testConsoleContainerImage(t, ctx, e) })
	t.Run("upload", func(t *testing.T) { testConsoleUpload(t, ctx, e) })
	screenshot(t, ctx, "06-list-ready")
	t.Run("narrow window", func(t *testing.T) {
		run(t, ctx, "narrowing the window", chromedp.EmulateViewport(420, 800))
		screenshot(t, ctx, "07-list-narrow")
		run(t, ctx, "restoring the window", chromedp.EmulateViewport(1280, 800))
	})
	t.Run("project image", func(t *testing.T) { testConsoleProjectImage(t, ctx, e) })
	t.Run("forbidden create", func(t *testing.T) { testConsoleForbidden(t, b, e) })
	t.Run("details and delete", func(t *testing.T) { testConsoleDelete(t, ctx, e) })
	t.Run("garbage collection", func(t *testing.T) { testConsoleGC(t, ctx) })
	t.Run("API server unreachable", func(t *testing.T) { testConsoleAPIDown(t, b, e) })
	t.Run("no external requests", func(t *testing.T) {
		urls := eval[[]string](t, ctx, `performance.getEntriesByType('resource').map(e => e.name)`)
		if len(urls) == 0 {
			t.Fatal("the page recorded no resource loads at all")
		}
		for _, u := range urls {
			if !strings.HasPrefix(u, admin.Base+"/") {
				t.Errorf("the page loaded %s, outside the console", u)
			}
		}
	})
}

// testConsoleSession: without the session a request gets 401, the login
// link works once, and a change without the CSRF header is refused.
func testConsoleSession(t *testing.T, ctx context.Context, c *consoleProc) {
	for _, path := range []string{"/", "/app.js", "/api/session", "/api/watch/cvi", c.URL[len(c.Base):]} {
		resp, err := http.Get(c.Base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: HTTP %d, want 401: %s", path, resp.StatusCode, body)
		}
	}
	code := await[int](t, ctx, `fetch('/api/images/cvi', {method: 'POST', body: '{"name":"x","source":"Upload"}'}).then(r => r.status)`)
	if code != http.StatusForbidden {
		t.Errorf("POST without the CSRF header from the page's own session: HTTP %d, want 403", code)
	}
	user := eval[string](t, ctx, `document.querySelector('#user').textContent`)
	if !strings.Contains(user, "Signed in as") {
		t.Errorf("identity shown: %q", user)
	}
}

// testConsoleNameCheck: a name the API server would refuse is refused in
// the dialog, before any request.
func testConsoleNameCheck(t *testing.T, ctx context.Context, e *provEnv) {
	createThroughForm(t, ctx, "HTTP", "Bad_Name", "#create-url", "http://127.0.0.1:1/x.raw")
	run(t, ctx, "waiting for the message", chromedp.WaitVisible("#create-error"))
	msg := eval[string](t, ctx, `document.querySelector('#create-error').textContent`)
	invalid := eval[string](t, ctx, `document.querySelector('#create-name').getAttribute('aria-invalid')`)
	if !strings.Contains(msg, "Name “Bad_Name” is not valid") || invalid != "true" {
		t.Errorf("message %q, aria-invalid %q", msg, invalid)
	}
	list, err := e.cluster.Dynamic.Resource(envtest.CVIResource).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("images after a refused name: %v, %v", list, err)
	}
	run(t, ctx, "cancelling", chromedp.Click("#create-cancel"), chromedp.WaitNotPresent("#create-dialog[open]"))
}

func testConsoleHTTP(t *testing.T, ctx context.Context, e *provEnv) {
	// 48 MiB at 8 MiB/s: about 6 s, three progress writes of the controller.
	files := newFileServer(t, 8<<20)
	disk := dvcrtest.MakeDiskFile(t, t.TempDir(), "web", "raw", "48M", 48<<20)
	url := files.add("web.raw", readFile(t, disk))
	run(t, ctx, "opening the HTTP form",
		chromedp.Click("#create-button"), chromedp.Click(`#create-menu button[data-source="HTTP"]`),
		chromedp.WaitVisible("#create-dialog[open]"),
		chromedp.SendKeys("#create-name", "from-http"), chromedp.SendKeys("#create-url", url))
	screenshot(t, ctx, "02-create-dialog-http")
	run(t, ctx, "submitting", chromedp.Click("#create-submit"))
	seen := watchRow(t, ctx, "from-http", 2*time.Minute, "03-list-provisioning")
	assertProgressBetween(t, seen)
	obj := e.image(t, "", "from-http")
	if status(obj, "size", "unpackedBytes") != fmt.Sprint(48<<20) || status(obj, "format") != "raw" {
		t.Errorf("from-http: %s, unpacked %s", status(obj, "format"), status(obj, "size", "unpackedBytes"))
	}
}

func testConsoleContainerImage(t *testing.T, ctx context.Context, e *provEnv) {
	source := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	disk := dvcrtest.MakeDiskFile(t, t.TempDir(), "golden", "qcow2", "64M", 24<<20)
	pushContainerDisk(t, source.Addr+"/cvi/golden:v1", "disk/golden.qcow2", readFile(t, disk), nil)
	slow := slowRegistry(t, source.Addr, 4<<20) // ~6 s for the 24 MiB layer
	createThroughForm(t, ctx, "ContainerImage", "from-registry", "#create-image", slow+"/cvi/golden:v1")
	seen := watchRow(t, ctx, "from-registry", 2*time.Minute)
	assertProgressBetween(t, seen)
	if f := status(e.image(t, "", "from-registry"), "format"); f != "qcow2" {
		t.Errorf("from-registry: format %q", f)
	}
}

func testConsoleUpload(t *testing.T, ctx context.Context, e *provEnv) {
	disk := dvcrtest.MakeDiskFile(t, t.TempDir(), "laptop", "qcow2", "64M", 8<<20)
	run(t, ctx, "opening the upload form",
		chromedp.Click("#create-button"), chromedp.Click(`#create-menu button[data-source="Upload"]`),
		chromedp.WaitVisible("#create-dialog[open]"),
		chromedp.SendKeys("#create-name", "uploaded"), chromedp.SetUploadFiles("#create-file", []string{disk}))
	screenshot(t, ctx, "04-create-dialog-upload")
	run(t, ctx, "submitting", chromedp.Click("#create-submit"))
	watchRow(t, ctx, "uploaded", 2*time.Minute)
	run(t, ctx, "the dialog closes after the upload", chromedp.WaitNotPresent("#create-dialog[open]"))
	if _, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/uploaded")); !bytes.Equal(got, readFile(t, disk)) {
		t.Fatal("the image stored from the browser's upload differs from the file")
	}
	screenshot(t, ctx, "05-after-upload")
}

// testConsoleProjectImage: a VirtualImage in the project chosen in the
// namespace selector, then back to the cluster images.
func testConsoleProjectImage(t *testing.T, ctx context.Context, e *provEnv) {
	files := newFileServer(t, 0)
	url := files.add("small.qcow2", readFile(t, dvcrtest.MakeDiskFile(t, t.TempDir(), "small", "qcow2", "16M", 1<<20)))
	run(t, ctx, "opening the project images",
		chromedp.Click("#tab-vi"), chromedp.WaitVisible("#ns-select"), chromedp.SetValue("#ns-select", "default"))
	createThroughForm(t, ctx, "HTTP", "project-disk", "#create-url", url)
	watchRow(t, ctx, "project-disk", time.Minute)
	if got := status(e.image(t, "default", "project-disk"), "target", "registryURL"); got != "dvcr.test/vi/default/project-disk:latest" {
		t.Errorf("project-disk's registry URL: %q", got)
	}
	screenshot(t, ctx, "08-project-images")
	run(t, ctx, "back to the cluster images", chromedp.Click("#tab-cvi"), chromedp.WaitVisible(`#images tbody tr[data-name="from-http"]`))
}

// testConsoleForbidden: a user who may read images but not create them sees
// the API server's refusal in the dialog, and nothing is created.
func testConsoleForbidden(t *testing.T, b *browser, e *provEnv) {
	e.cluster.Grant(t, "viewer", []rbacv1.PolicyRule{
		{APIGroups: []string{envtest.Group}, Resources: []string{"clustervirtualimages", "virtualimages"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces", "events"}, Verbs: []string{"get", "list"}},
	})
	viewer := startConsole(t, "--kubeconfig", e.cluster.KubeconfigFor(t, "viewer"))
	ctx := b.page(t, viewer)
	if st := row(t, ctx, "from-http"); st.Phase != "Ready" {
		t.Errorf("the viewer's table shows from-http as %+v", st)
	}
	createThroughForm(t, ctx, "HTTP", "not-allowed", "#create-url", "http://127.0.0.1:1/x.raw")
	run(t, ctx, "waiting for the refusal", chromedp.WaitVisible("#create-error"))
	msg := eval[string](t, ctx, `document.querySelector('#create-error').textContent`)
	want := `clustervirtualimages.virtualization.deckhouse.io is forbidden: User "viewer" cannot create resource "clustervirtualimages"`
	if !strings.Contains(msg, want) {
		t.Errorf("refusal shown: %q, want the API server's %q", msg, want)
	}
	screenshot(t, ctx, "09-forbidden-create")
	_, err := e.cluster.Dynamic.Resource(envtest.CVIResource).Get(context.Background(), "not-allowed", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("after the refusal, get not-allowed: %v (want not found)", err)
	}
}

func testConsoleDelete(t *testing.T, ctx context.Context, e *provEnv) {
	run(t, ctx, "opening the details",
		chromedp.Click(`#images tbody tr[data-name="from-http"]`),
		chromedp.WaitVisible("#details-dialog[open]"),
		chromedp.WaitVisible("#details-conditions tbody tr"))
	text := eval[string](t, ctx, `document.querySelector('#details-dialog').innerText`)
	for _, want := range []string{"dvcr.test/cvi/from-http", "Ready", "DatasourceReady"} {
		if !strings.Contains(text, want) {
			t.Errorf("details lack %q:\n%s", want, text)
		}
	}
	screenshot(t, ctx, "10-details")
	run(t, ctx, "deleting",
		chromedp.Click("#details-delete"), chromedp.WaitVisible("#confirm-dialog[open]"),
		chromedp.Click("#confirm-delete"),
		chromedp.WaitNotPresent(`#images tbody tr[data-name="from-http"]`))
	_, err := e.cluster.Dynamic.Resource(envtest.CVIResource).Get(context.Background(), "from-http", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("after delete, get from-http: %v (want not found)", err)
	}
}

// testConsoleGC: the panel's check lists the deleted image, "Run now"
// deletes it and the run shows in the results.
func testConsoleGC(t *testing.T, ctx context.Context) {
	run(t, ctx, "checking",
		chromedp.Click("#tab-gc"), chromedp.WaitVisible("#gc-results tbody tr"),
		chromedp.Click("#gc-check"), chromedp.WaitVisible("#gc-eligible tbody tr"))
	eligible := eval[string](t, ctx, `document.querySelector('#gc-eligible tbody').innerText`)
	if !strings.Contains(eligible, "from-http") {
		t.Errorf("check lists:\n%s\nwant from-http", eligible)
	}
	run(t, ctx, "running", chromedp.Click("#gc-run"), chromedp.WaitVisible("#confirm-dialog[open]"), chromedp.Click("#confirm-delete"))
	done := `document.querySelector('#gc-results tbody').innerText.includes('success')`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](done, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		t.Fatalf("no successful run in the panel: %v\n%s", err, eval[string](t, ctx, `document.querySelector('#gc-view').innerText`))
	}
	log := eval[string](t, ctx, `document.querySelector('#gc-log').textContent`)
	if !strings.Contains(log, "Freed space after cleanup") {
		t.Errorf("run log:\n%s", log)
	}
	screenshot(t, ctx, "11-gc-panel")
}

// testConsoleAPIDown: a console whose connection to the API server is cut
// (a TCP proxy in between closes every connection and stops listening) says
// so on the page instead of showing a stale table as live, and goes live
// again by itself when the API server is back.
func testConsoleAPIDown(t *testing.T, b *browser, e *provEnv) {
	proxy := newTCPProxy(t, e.cluster.Config.Host)
	c := startConsole(t, "--kubeconfig", kubeconfigVia(t, e.kubeconfig, proxy.URL()))
	ctx := b.page(t, c)
	proxy.cut()
	run(t, ctx, "waiting for the banner", chromedp.WaitVisible("#problem"), chromedp.WaitVisible("#live.off"))
	msg := eval[string](t, ctx, `document.querySelector('#problem').textContent`)
	if !strings.Contains(msg, "connection refused") {
		t.Errorf("banner %q, want the client's connection error", msg)
	}
	screenshot(t, ctx, "12-api-server-unreachable")
	proxy.restore()
	run(t, ctx, "waiting until live again", chromedp.WaitVisible("#live.on"), chromedp.WaitNotVisible("#problem"),
		chromedp.WaitVisible(`#images tbody tr[data-name="uploaded"]`))
}

// assertProgressBetween: the table showed at least one progress strictly
// between 0 % and 100 % while the image was provisioning.
func assertProgressBetween(t *testing.T, seen []string) {
	t.Helper()
	for _, p := range seen {
		if progressBetween(p) {
			return
		}
	}
	t.Errorf("no progress between 0%% and 100%% was shown while provisioning: %v", seen)
}

// progressBetween: p, such as "45.3%", is strictly between 0 % and 100 %.
func progressBetween(p string) bool {
	var v float64
	_, err := fmt.Sscanf(strings.TrimSuffix(p, "%"), "%g", &v)
	return err == nil && v > 0 && v < 100
}
