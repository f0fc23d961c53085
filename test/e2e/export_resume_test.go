package e2e

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// faultProxy forwards a loopback port to a registry and, counting the bytes
// sent back to the client over all connections, once past dropAt closes
// the connection carrying them (once), or once past stallAt stops
// forwarding on that connection for good (stalled is closed then; later
// connections pass).
type faultProxy struct {
	target  string
	addr    string
	dropAt  int64
	stallAt int64
	stalled chan struct{}
	done    chan struct{}
	l       net.Listener
	// downAfterDrop closes the listener with the dropped connection: the
	// registry looks gone for good.
	downAfterDrop bool

	mu      sync.Mutex
	passed  int64
	dropped bool
	stalls  bool // a connection has stalled; the others pass
}

func newFaultProxy(t *testing.T, target string, dropAt, stallAt int64) *faultProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{target: target, addr: l.Addr().String(), dropAt: dropAt, stallAt: stallAt,
		stalled: make(chan struct{}), done: make(chan struct{}), l: l}
	t.Cleanup(func() { close(p.done); l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go p.down(in, out)
		}
	}()
	return p
}

// down copies the registry's answers to the client, with the fault.
func (p *faultProxy) down(in, out net.Conn) {
	defer in.Close()
	defer out.Close()
	buf := make([]byte, 16<<10)
	for {
		n, err := out.Read(buf)
		if n > 0 {
			send, fault := p.count(int64(n))
			if _, werr := in.Write(buf[:send]); werr != nil {
				return
			}
			switch fault {
			case "drop":
				return
			case "down":
				p.l.Close()
				return
			case "stall":
				close(p.stalled)
				<-p.done
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// count decides how much of n bytes to pass and whether to fault after.
func (p *faultProxy) count(n int64) (int64, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	before := p.passed
	p.passed += n
	switch {
	case p.dropAt > 0 && !p.dropped && p.passed >= p.dropAt:
		p.dropped = true
		if p.downAfterDrop {
			return p.dropAt - before, "down"
		}
		return p.dropAt - before, "drop"
	case p.stallAt > 0 && !p.stalls && p.passed >= p.stallAt:
		p.stalls = true
		return max(p.stallAt-before, 0), "stall"
	}
	return n, ""
}

// importBigRaw imports a 32 MiB raw disk (24 MiB random) as repo.
func importBigRaw(t *testing.T, srv *dvcrtest.Server, repo string) string {
	t.Helper()
	src := dvcrtest.MakeDiskFile(t, t.TempDir(), "big", "raw", "32M", 24<<20)
	dvcrtest.MustImport(t, srv, src, repo)
	return src
}

// TestExportResumesDroppedConnection: the connection is cut once half way
// through the layer; the export resumes with Range, says so, and the file
// equals the source.
func TestExportResumesDroppedConnection(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	src := importBigRaw(t, srv, "cvi/big")
	proxy := newFaultProxy(t, srv.Addr, 16<<20, 0)
	out := filepath.Join(t.TempDir(), "big.raw")
	run := dvcrtest.Export(t, proxy.addr, "cvi/big", out)
	if run.ExitCode != 0 {
		t.Fatalf("exit %d: %s", run.ExitCode, run.Stderr)
	}
	assertSameFile(t, out, src)
	retried := false
	for _, e := range run.Events {
		// Resumed from where it stopped, not from the start.
		retried = retried || (e.Phase == "retry" && strings.Contains(e.Message, "resuming") && !strings.Contains(e.Message, "at byte 0 "))
	}
	proxy.mu.Lock()
	dropped := proxy.dropped
	proxy.mu.Unlock()
	if !retried || !dropped {
		t.Errorf("dropped %t, a retry event %t: %+v", dropped, retried, run.Events)
	}
}

// TestExportGivesUp: a registry that goes away mid-layer is retried a
// bounded number of times, then the export fails saying so.
func TestExportGivesUp(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	importBigRaw(t, srv, "cvi/big")
	proxy := newFaultProxy(t, srv.Addr, 16<<20, 0)
	proxy.mu.Lock()
	proxy.downAfterDrop = true
	proxy.mu.Unlock()
	run := dvcrtest.Export(t, proxy.addr, "cvi/big", filepath.Join(t.TempDir(), "big.raw"))
	if run.ExitCode == 0 || !strings.Contains(run.Stderr, "gave up after 5 attempts") {
		t.Errorf("exit %d: %s", run.ExitCode, run.Stderr)
	}
}

// TestExportResumesStalledConnection: a connection that stops sending mid
// layer is given up after --idle-timeout and the export resumes with Range.
func TestExportResumesStalledConnection(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	src := importBigRaw(t, srv, "cvi/big")
	proxy := newFaultProxy(t, srv.Addr, 0, 16<<20)
	out := filepath.Join(t.TempDir(), "big.raw")
	run := dvcrtest.Export(t, proxy.addr, "cvi/big", out, "--idle-timeout", "1s")
	if run.ExitCode != 0 {
		t.Fatalf("exit %d: %s", run.ExitCode, run.Stderr)
	}
	assertSameFile(t, out, src)
	idle := false
	for _, e := range run.Events {
		idle = idle || (e.Phase == "retry" && strings.Contains(e.Message, "no data for 1s"))
	}
	if !idle {
		t.Errorf("no retry event for the silent connection: %+v", run.Events)
	}
}

// TestExportContinueAfterKill: an export stalled mid-layer is killed; the
// file holds part of the disk; --continue completes it to the source's
// bytes. A file that is not a prefix of the image fails the digest check;
// one larger than the image is refused.
func TestExportContinueAfterKill(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	src := importBigRaw(t, srv, "cvi/big")
	proxy := newFaultProxy(t, srv.Addr, 0, 12<<20)
	out := filepath.Join(t.TempDir(), "big.raw")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := dvcrtest.ExportCommand(t, ctx, proxy.addr, "cvi/big", out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proxy.stalled:
	case <-time.After(time.Minute):
		t.Fatal("the export never reached the stall")
	}
	partial := waitStable(t, out)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if partial == 0 || partial >= 32<<20 {
		t.Fatalf("the killed export left %d bytes", partial)
	}
	res := dvcrtest.MustExport(t, srv.Addr, "cvi/big", out, "--continue")
	assertSameFile(t, out, src)
	if res.ContinuedFrom != partial || res.Bytes != 32<<20 {
		t.Errorf("continued from %d (file had %d), bytes %d", res.ContinuedFrom, partial, res.Bytes)
	}
	assertResult(t, res, out, "raw")

	// A prefix that is not the image's: the final check fails.
	if err := os.Truncate(out, partial); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(out, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteAt([]byte("garbage"), 1000)
	f.Close()
	run := dvcrtest.Export(t, srv.Addr, "cvi/big", out, "--continue")
	if run.ExitCode == 0 || !strings.Contains(run.Stderr, "layer digest mismatch") || !strings.Contains(run.Stderr, "not the start of this image's disk file") {
		t.Errorf("a bad prefix: exit %d, %s", run.ExitCode, run.Stderr)
	}
	// Larger than the image.
	if err := os.Truncate(out, 33<<20); err != nil {
		t.Fatal(err)
	}
	run = dvcrtest.Export(t, srv.Addr, "cvi/big", out, "--continue")
	if run.ExitCode == 0 || !strings.Contains(run.Stderr, "more than the image's disk file") {
		t.Errorf("a larger file: exit %d, %s", run.ExitCode, run.Stderr)
	}
}

// waitStable waits until the file's size stops changing and returns it.
func waitStable(t *testing.T, path string) int64 {
	t.Helper()
	last := int64(-1)
	for range 50 {
		time.Sleep(200 * time.Millisecond)
		st, err := os.Stat(path)
		if err == nil && st.Size() == last {
			return last
		}
		if err == nil {
			last = st.Size()
		}
	}
	t.Fatalf("%s kept growing", path)
	return 0
}
