package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestConsoleDownload: a Ready image's "Download" link in the table makes
// the browser (Debian's headless chromium) save the disk file, under its
// stored name and byte for byte as imported, read by `dvcr console` from a
// real dvcr serve (--registry) with the identity of a real API server; its
// "Download raw" link saves the raw disk qemu-img converts the qcow2 to.
func TestConsoleDownload(t *testing.T) {
	e := newProvEnv(t, "")
	tmp := t.TempDir()
	c := startConsole(t, "--kubeconfig", e.kubeconfig, "--registry", "http://"+e.srv.Addr, "--download-dir", tmp)
	b := newBrowser(t)
	ctx := b.page(t, c)

	files := newFileServer(t, 0)
	disk := dvcrtest.MakeDiskFile(t, t.TempDir(), "laptop", "qcow2", "64M", 24<<20)
	createThroughForm(t, ctx, "HTTP", "to-download", "#create-url", files.add("laptop.qcow2", readFile(t, disk)))
	watchRow(t, ctx, "to-download", 2*time.Minute)
	stored, data := untarSingle(t, pulledLayer(t, e.srv, "cvi/to-download"))
	if !bytes.Equal(data, readFile(t, disk)) {
		t.Fatal("the stored disk file differs from the source")
	}
	name := path.Base(stored)

	// The page's own fetch sees the headers the browser gets.
	head := await[string](t, ctx, `fetch('/api/download/cvi/to-download').then(r => r.headers.get('Content-Disposition') + ' ' + r.headers.get('Content-Length'))`)
	if want := fmt.Sprintf("attachment; filename=%s %d", name, len(data)); head != want {
		t.Errorf("headers %q, want %q", head, want)
	}

	dir := t.TempDir()
	cc := chromedp.FromContext(ctx)
	if _, err := cdp.Call(ctx, cc.Browser, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, BrowserContextID: cc.BrowserContextID, DownloadPath: dir,
	}); err != nil {
		t.Fatalf("setting the download directory: %v", err)
	}
	screenshot(t, ctx, "13-download-link")
	run(t, ctx, "clicking Download", chromedp.Click(`#images tbody tr[data-name="to-download"] a.download`))
	got := waitDownload(t, filepath.Join(dir, name), int64(len(data)), time.Minute)
	if !bytes.Equal(got, readFile(t, disk)) {
		t.Fatalf("the downloaded %s (%d bytes) differs from the source (%d bytes)", name, len(got), len(data))
	}
	if open := eval[bool](t, ctx, `document.querySelector('#details-dialog').open`); open {
		t.Error("clicking Download also opened the details")
	}

	t.Run("details links", func(t *testing.T) { testDetailsLinks(t, ctx) })
	t.Run("raw", func(t *testing.T) { testDownloadRaw(t, ctx, disk, dir, tmp) })

	t.Run("missing image", func(t *testing.T) {
		code := await[int](t, ctx, `fetch('/api/download/cvi/no-such-image').then(r => r.status)`)
		if code != http.StatusNotFound {
			t.Errorf("download of a missing image: HTTP %d, want 404", code)
		}
	})
}

// testDetailsLinks: the details offer both downloads of the qcow2.
func testDetailsLinks(t *testing.T, ctx context.Context) {
	run(t, ctx, "opening the details",
		chromedp.Click(`#images tbody tr[data-name="to-download"]`), chromedp.WaitVisible("#details-download"))
	href := eval[string](t, ctx, `document.querySelector('#details-download').getAttribute('href')`)
	if href != "/api/download/cvi/to-download" {
		t.Errorf("details link %q", href)
	}
	raw := eval[string](t, ctx, `(e => e.hidden ? 'hidden' : e.getAttribute('href'))(document.querySelector('#details-download-raw'))`)
	if raw != "/api/download/cvi/to-download?format=raw" {
		t.Errorf("details raw link %q", raw)
	}
	screenshot(t, ctx, "14-download-details")
	run(t, ctx, "closing", chromedp.Click("#details-close"), chromedp.WaitNotPresent("#details-dialog[open]"))
}

// testDownloadRaw clicks the row's "Download raw": the browser saves
// laptop.raw, equal to qemu-img convert -O raw of disk, into dir, and the
// console's download directory tmp is empty afterwards.
func testDownloadRaw(t *testing.T, ctx context.Context, disk, dir, tmp string) {
	ref := filepath.Join(t.TempDir(), "qemu.raw")
	runTool(t, dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils"), "convert", "-O", "raw", disk, ref)
	want := readFile(t, ref)
	const url = "/api/download/cvi/to-download?format=raw"
	head := await[string](t, ctx, `fetch('`+url+`', {method: 'HEAD'}).then(r => r.status + ' ' + r.headers.get('Content-Disposition') + ' ' + r.headers.get('Content-Length'))`)
	if w := fmt.Sprintf("200 attachment; filename=laptop.raw %d", len(want)); head != w {
		t.Errorf("headers %q, want %q", head, w)
	}
	link := `#images tbody tr[data-name="to-download"] a.download-raw`
	if title := eval[string](t, ctx, `document.querySelector('`+link+`').title`); !strings.Contains(title, "sparse raw disk") {
		t.Errorf("the link's title %q does not say what it does", title)
	}
	run(t, ctx, "clicking Download raw", chromedp.Click(link))
	got := waitDownload(t, filepath.Join(dir, "laptop.raw"), int64(len(want)), 2*time.Minute)
	if !bytes.Equal(got, want) {
		t.Fatalf("the downloaded laptop.raw (%d bytes) differs from qemu-img convert -O raw (%d bytes)", len(got), len(want))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, _ := os.ReadDir(tmp)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d files left in --download-dir, e.g. %s", len(left), left[0].Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDownload waits until the browser finished saving file (its
// .crdownload gone, size reached) and returns its bytes.
func waitDownload(t *testing.T, file string, size int64, timeout time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st, err := os.Stat(file)
		partial, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "*.crdownload"))
		if err == nil && st.Size() == size && len(partial) == 0 {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			data, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Fatalf("%s not downloaded within %s; the directory holds %s", file, timeout, strings.Join(names, ", "))
	return nil
}
