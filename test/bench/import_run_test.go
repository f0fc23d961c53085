//go:build bench

// The import benchmark's processes and data.

package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type ibTimedRun struct {
	started time.Time
	wall    time.Duration
	rss     int64
	cpu     float64
}

// ibRunTimed runs name under /usr/bin/time for its own peak RSS and CPU
// (the maxrss of a direct child would count the test process too).
func ibRunTimed(t *testing.T, stdout, stderr io.Writer, name string, args ...string) (ibTimedRun, error) {
	t.Helper()
	return runTimed(t, stdout, stderr, nil, name, args...)
}

// runTimed is ibRunTimed; watch, when set, is called with the pid of
// /usr/bin/time once it started and returns a func called when it exited
// (before the wall time is taken).
func runTimed(t *testing.T, stdout, stderr io.Writer, watch func(timePID int) func(), name string, args ...string) (ibTimedRun, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tf := filepath.Join(t.TempDir(), "time")
	cmd := exec.CommandContext(ctx, "/usr/bin/time", append([]string{"-f", "%M %U %S", "-o", tf, name}, args...)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	r := ibTimedRun{started: time.Now()}
	var err error
	if watch == nil {
		err = cmd.Run()
	} else if err = cmd.Start(); err == nil {
		stop := watch(cmd.Process.Pid)
		err = cmd.Wait()
		stop()
	}
	r.wall = time.Since(r.started)
	if err != nil {
		return r, err
	}
	out, err := os.ReadFile(tf)
	if err != nil {
		return r, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) != 3 {
		return r, fmt.Errorf("/usr/bin/time: %q", out)
	}
	kb, err1 := strconv.ParseInt(f[0], 10, 64)
	u, err2 := strconv.ParseFloat(f[1], 64)
	s, err3 := strconv.ParseFloat(f[2], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return r, fmt.Errorf("/usr/bin/time: %q", out)
	}
	r.rss, r.cpu = kb<<10, u+s
	return r, nil
}

func ibParseResult(t *testing.T, out []byte) ibImportResult {
	t.Helper()
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	var res ibImportResult
	if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil || res.Repository == "" {
		t.Fatalf("dvcr import -o json: no result on the last line (%v): %s", err, lines[len(lines)-1])
	}
	return res
}

func ibPushMonolithic(c *http.Client, base, repo string, f *os.File, size int64, dgst string) (time.Duration, error) {
	start := time.Now()
	loc, err := ppStartUpload(c, base, repo)
	if err != nil {
		return 0, err
	}
	resp, err := ppDo(c, http.MethodPut, ppWithDigest(loc, dgst), io.NewSectionReader(f, 0, size), size, nil, http.StatusCreated)
	if err != nil {
		return 0, err
	}
	ppDrain(resp)
	d := time.Since(start)
	if got := resp.Header.Get("Docker-Content-Digest"); got != dgst {
		return d, fmt.Errorf("Docker-Content-Digest %q, want %q", got, dgst)
	}
	return d, nil
}

// ibPerf records one import of each image under `perf record -g` into
// DIR/import-<file>.data (not measured).
func ibPerf(t *testing.T, dir string, flavor *ppFlavor, dvcrBin, srvDir, srcBase string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("IMPORTBENCH_PERF=%q: %v", dir, err)
	}
	for _, file := range []string{"disk.raw", "disk.raw.gz", "disk.raw.xz"} {
		srv := ppStartRegistry(t, flavor, filepath.Join(srvDir, "dvcr"))
		out := filepath.Join(dir, "import-"+file+".data")
		cmd := exec.Command("perf", "record", "-F", "999", "-g", "-o", out, "--", dvcrBin, "import", "--registry", srv.base, srcBase+file, "cvi/bench-perf")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("perf record: %v\n%s", err, msg)
		}
		t.Logf("perf: %s", out)
		srv.stop(t)
		if err := os.RemoveAll(srv.root); err != nil {
			t.Fatal(err)
		}
	}
}

type ibImages struct {
	size      map[string]int64 // disk.raw, disk.raw.gz, disk.raw.xz
	rawDigest string
}

func ibEnvSize(t *testing.T) int64 {
	v := os.Getenv("IMPORTBENCH_SIZE")
	if v == "" {
		return ibDefaultSize
	}
	num, mult := v, int64(1)
	for suffix, m := range map[string]int64{"MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			num, mult = n, m
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n*mult%ibExtent != 0 {
		t.Fatalf("IMPORTBENCH_SIZE=%q: want a size that is a multiple of 4 MiB (bytes, or with MiB or GiB)", v)
	}
	return n * mult
}

// ibMakeImages writes disk.raw of size bytes into dir and compresses it with
// the real xz and gzip; images already there with the right size (and
// compressed after the raw one) are kept.
func ibMakeImages(t *testing.T, dir string, size int64) *ibImages {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "disk.raw")
	if st, err := os.Stat(raw); err != nil || st.Size() != size {
		ibWriteRaw(t, raw, size)
	}
	rawSt, err := os.Stat(raw)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, c := range []struct{ ext, cmd string }{{".xz", "xz -T2 -6 -c"}, {".gz", "gzip -6 -c"}} {
		out := raw + c.ext
		if st, err := os.Stat(out); err == nil && st.ModTime().After(rawSt.ModTime()) && st.Size() > 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			f := strings.Fields(c.cmd)
			cmd := exec.Command(f[0], append(f[1:], raw)...)
			w, err := os.Create(out + ".tmp")
			if err != nil {
				t.Error(err)
				return
			}
			cmd.Stdout = w
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err = cmd.Run()
			if err == nil {
				err = w.Close()
			}
			if err == nil {
				err = os.Rename(out+".tmp", out)
			}
			if err != nil {
				t.Errorf("%s: %v\n%s", c.cmd, err, stderr.String())
				return
			}
			t.Logf("%s: %s", c.cmd, time.Since(start).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	img := &ibImages{size: map[string]int64{}}
	for _, name := range []string{"disk.raw", "disk.raw.gz", "disk.raw.xz"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		img.size[name] = st.Size()
	}
	img.rawDigest = "sha256:" + ebHashFile(t, raw)
	return img
}

// ibWriteRaw writes the disk image: extent i (4 MiB) is pseudo-random when
// i%4 == 0, a text/binary pattern when i%4 == 2, zeros otherwise.
func ibWriteRaw(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{'d', 'v', 'c', 'r', 'i', 'm', 'g'})
	buf := make([]byte, ibExtent)
	for off := int64(0); off < size; off += ibExtent {
		switch i := off / ibExtent; i % 4 {
		case 0:
			_, _ = rng.Read(buf)
		case 2:
			ibPattern(buf, off, i)
		default:
			clear(buf)
		}
		n := min(int64(ibExtent), size-off)
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

var ibWords = strings.Fields("kernel systemd mount ext4 inode journal block sector scsi virtio-blk eth0 dhcp cloud-init sshd cron")

// ibPattern fills buf (a multiple of 4 KiB) with the compressible pattern
// of the disk's bytes at off, tagged i: 4 KiB blocks of a 32-byte binary
// header, then log-like lines. No 512-byte sector of it is all zeros.
func ibPattern(buf []byte, off, i int64) {
	p := buf[:0]
	for blk := int64(0); blk < int64(len(buf))/4096; blk++ {
		sector := (off + blk*4096) / 512
		var hdr [32]byte
		copy(hdr[:8], "DVCRBLK\x00")
		binary.LittleEndian.PutUint64(hdr[8:], uint64(sector))
		binary.LittleEndian.PutUint32(hdr[16:], uint32(sector)*2654435761)
		binary.LittleEndian.PutUint64(hdr[24:], uint64(i))
		p = append(p, hdr[:]...)
		for line := 0; len(p)%4096 != 0; line++ {
			s := fmt.Appendf(nil, "%010d %s[%d]: %s %d ok flags=0x%04x\n", sector*100+int64(line), ibWords[(int(sector)+line)%len(ibWords)], 1000+line, ibWords[line%len(ibWords)], blk*int64(line), line*7)
			p = append(p, s[:min(len(s), 4096-len(p)%4096)]...)
		}
	}
}
