//go:build bench

// Measuring the client processes of the export and verify benchmarks: peak
// RSS sampled from /proc, the binary's start, progress lines timed as they
// arrive, the installed copy of the binary.

package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rssPeaks is what sampling a process's /proc/PID/status found: the
// largest VmRSS, RssAnon and RssFile seen (each its own maximum).
type rssPeaks struct {
	rss, anon, file int64
	samples         int
}

// sampleRSS, as runTimed's watch, samples the command /usr/bin/time runs
// every 20 ms into p.
func sampleRSS(p *rssPeaks) func(timePID int) func() {
	return func(timePID int) func() {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			child := 0
			for {
				if child == 0 {
					data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", timePID, timePID))
					if f := strings.Fields(string(data)); len(f) > 0 {
						child, _ = strconv.Atoi(f[0])
					}
				}
				if child != 0 {
					p.add(child)
				}
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
		return func() { close(done); wg.Wait() }
	}
}

func (p *rssPeaks) add(pid int) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	seen := false
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &p.rss
		case "RssAnon":
			dst = &p.anon
		case "RssFile":
			dst = &p.file
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err == nil {
			*dst = max(*dst, kb<<10)
			seen = true
		}
	}
	if seen {
		p.samples++
	}
}

// startupRSS is the peak RSS of `name args...` doing nothing but start
// (a --help): the floor under every run of the binary.
func startupRSS(t *testing.T, name string, args ...string) int64 {
	t.Helper()
	tm, err := ibRunTimed(t, io.Discard, io.Discard, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return tm.rss
}

// toolVersion is the first line of `name args...`.
func toolVersion(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// kernelRelease is uname -r.
func kernelRelease() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(data))
}

// lineClock is a command's stdout that notes when each line arrived: the
// NDJSON events of `dvcr export -o json` then tell its phases apart.
type lineClock struct {
	mu      sync.Mutex
	partial []byte
	lines   []clockedLine
}

type clockedLine struct {
	at   time.Time
	line []byte
}

func (c *lineClock) Write(p []byte) (int, error) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		c.lines = append(c.lines, clockedLine{at: now, line: append([]byte(nil), c.partial[:i]...)})
		c.partial = c.partial[i+1:]
	}
}

// Bytes is everything written.
func (c *lineClock) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b []byte
	for _, l := range c.lines {
		b = append(append(b, l.line...), '\n')
	}
	return append(b, c.partial...)
}

// exportPhases splits a dvcr export's wall time at its progress events:
// stream is from the start to the last periodic "transfer" event (at most
// 250 ms, the progress interval, before the layer's last byte was read);
// after is from there to the final "transfer" event, emitted once the
// disk file is written (--format raw: once the written file has been read
// back for its sha256); sync is from there to the result line (the fsync of
// FILE, the layer's tail and digest check). ok is false when the events are
// not there.
func (c *lineClock) exportPhases(started time.Time) (stream, after, sync time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var transfer []time.Time
	var result time.Time
	for _, l := range c.lines {
		var e struct {
			Phase string `json:"phase"`
		}
		if json.Unmarshal(l.line, &e) != nil {
			continue
		}
		switch e.Phase {
		case "transfer":
			transfer = append(transfer, l.at)
		case "":
			result = l.at
		}
	}
	if len(transfer) < 2 || result.IsZero() {
		return 0, 0, 0, false
	}
	last, prev := transfer[len(transfer)-1], transfer[len(transfer)-2]
	return prev.Sub(started), last.Sub(prev), result.Sub(last), true
}

// installedCopy copies the client binary as a package or an image layer
// installs it (written in 32 KiB pieces) and runs exports from the copy.
// bin/dvcr as the Go linker left it sits in the page cache in large folios,
// which the kernel maps whole: the same executable then starts with ~10 MiB
// more resident pages (file-backed, shared, clean) than once installed.
func installedCopy(t *testing.T, src, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, filepath.Base(src))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyBuffer(out, struct{ io.Reader }{in}, make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}
