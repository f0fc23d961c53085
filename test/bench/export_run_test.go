//go:build bench

// The export benchmark's images and tools (the verify benchmark shares the
// raw image; process measurement is in process_test.go).

package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	ebVirtual   = 4 << 30  // the qcow2's virtual size
	ebData      = 1 << 30  // its data
	ebCluster   = 64 << 10 // qemu-img's default cluster size; extents are multiples of it
	ebMaxExtent = 64       // longest data extent, in clusters (4 MiB); the shortest is one
)

// ebImages are the export benchmark's disk images, kept across runs.
type ebImages struct {
	raw, rawSHA string // disk.raw (the import benchmark's image) and the hex sha256 of it
	qcow2       string // disk.qcow2: ebVirtual, ebData of data in extents
	qcow2Size   int64  // its file size
	extents     int    // data extents
	late        int    // of which written after the conversion, in shuffled order
	dataBytes   int64  // data allocated in the qcow2, from qemu-img map
	mapEntries  int    // entries of qemu-img map --output=json
}

// ebRawImage writes (or keeps) dir/disk.raw, the import benchmark's 1 GiB
// raw image, and returns its path and hex sha256.
func ebRawImage(t *testing.T, dir string) (string, string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "disk.raw")
	if st, err := os.Stat(raw); err != nil || st.Size() != ibDefaultSize {
		start := time.Now()
		ibWriteRaw(t, raw, ibDefaultSize)
		t.Logf("wrote %s in %s", raw, time.Since(start).Round(time.Millisecond))
	}
	return raw, ebHashFile(t, raw)
}

// ebHashFile is the hex sha256 of a file (read whole, holes as zeros).
func ebHashFile(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, ppIoBuf)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ebExtent is a data extent of the qcow2, at a guest offset.
type ebExtent struct{ off, size int64 }

// ebLayout scatters ebData over ebVirtual in extents of 1 to ebMaxExtent
// clusters with random gaps (fixed seed): a few hundred extents.
func ebLayout() []ebExtent {
	rng := rand.New(rand.NewPCG(0x64766372, 0x71636f77))
	var lens []int64 // clusters
	for sum, total := int64(0), int64(ebData/ebCluster); sum < total; {
		l := min(1+rng.Int64N(ebMaxExtent), total-sum)
		lens = append(lens, l)
		sum += l
	}
	free := int64((ebVirtual - ebData) / ebCluster)
	w := make([]float64, len(lens)+1)
	var sumW float64
	for i := range w {
		w[i] = rng.Float64()
		sumW += w[i]
	}
	// The gaps before the extents take at most free clusters: the last
	// gap, after the last extent, is the rest.
	var ext []ebExtent
	var off int64 // clusters
	for i, l := range lens {
		off += int64(float64(free) * w[i] / sumW)
		ext = append(ext, ebExtent{off: off * ebCluster, size: l * ebCluster})
		off += l
	}
	return ext
}

// ebFill fills buf with extent k's content: pseudo-random for even k, the
// import image's compressible pattern for odd k.
func ebFill(buf []byte, e ebExtent, k int) {
	if k%2 == 0 {
		var seed [32]byte
		copy(seed[:], fmt.Sprintf("dvcr-export-%d", k))
		_, _ = rand.NewChaCha8(seed).Read(buf)
		return
	}
	ibPattern(buf, e.off, int64(k))
}

// ebMakeImages writes (or keeps) disk.raw and disk.qcow2 in dir. The qcow2
// is made the way images are: three quarters of the extents written to a
// sparse raw file converted with `qemu-img convert -O qcow2` (clusters in
// guest order), then the last quarter written into it with qemu-io in
// shuffled order (their clusters appended at the end of the file, out of
// guest order, as a guest's later writes land).
func ebMakeImages(t *testing.T, dir string) *ebImages {
	t.Helper()
	img := &ebImages{}
	img.raw, img.rawSHA = ebRawImage(t, dir)
	img.qcow2 = filepath.Join(dir, "disk.qcow2")
	layout := ebLayout()
	img.extents = len(layout)
	var late []int
	for k := range layout {
		if k%4 == 3 {
			late = append(late, k)
		}
	}
	img.late = len(late)
	if _, err := os.Stat(img.qcow2); err != nil {
		start := time.Now()
		ebWriteQcow2(t, dir, img.qcow2, layout, late)
		t.Logf("wrote %s in %s", img.qcow2, time.Since(start).Round(time.Millisecond))
	}
	st, err := os.Stat(img.qcow2)
	if err != nil {
		t.Fatal(err)
	}
	img.qcow2Size = st.Size()
	out, err := exec.Command("qemu-img", "map", "--output=json", img.qcow2).Output()
	if err != nil {
		t.Fatalf("qemu-img map: %v", err)
	}
	var m []struct {
		Length int64 `json:"length"`
		Data   bool  `json:"data"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("qemu-img map: %v", err)
	}
	for _, e := range m {
		if e.Data {
			img.dataBytes += e.Length
		}
	}
	img.mapEntries = len(m)
	if img.dataBytes != ebData {
		t.Fatalf("%s holds %d bytes of data, want %d: remove it to write it again", img.qcow2, img.dataBytes, ebData)
	}
	return img
}

func ebWriteQcow2(t *testing.T, dir, path string, layout []ebExtent, late []int) {
	t.Helper()
	work := filepath.Join(dir, "qcow2.tmp")
	if err := os.RemoveAll(work); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	seed, err := os.Create(filepath.Join(work, "seed.raw"))
	if err != nil {
		t.Fatal(err)
	}
	if err := seed.Truncate(ebVirtual); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, ebMaxExtent*ebCluster)
	isLate := map[int]bool{}
	for _, k := range late {
		isLate[k] = true
	}
	for k, e := range layout {
		b := buf[:e.size]
		ebFill(b, e, k)
		if isLate[k] {
			if err := os.WriteFile(filepath.Join(work, fmt.Sprintf("ext-%d", k)), b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := seed.WriteAt(b, e.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := seed.Close(); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(work, "disk.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", seed.Name(), tmp).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert -O qcow2: %v\n%s", err, out)
	}
	args := []string{"-f", "qcow2"}
	rng := rand.New(rand.NewPCG(7, 11))
	for _, i := range rng.Perm(len(late)) {
		k := late[i]
		args = append(args, "-c", fmt.Sprintf("write -q -s %s %d %d", filepath.Join(work, fmt.Sprintf("ext-%d", k)), layout[k].off, layout[k].size))
	}
	args = append(args, tmp)
	if out, err := exec.Command("qemu-io", args...).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("qemu-io: %v\n%s", err, out)
	}
	if out, err := exec.Command("qemu-img", "check", tmp).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// ebExportResult is the last line of `dvcr export -o json`.
type ebExportResult struct {
	File         string  `json:"file"`
	Format       string  `json:"format"`
	SourceFormat string  `json:"sourceFormat"`
	Bytes        int64   `json:"bytes"`
	SHA256       string  `json:"sha256"`
	Seconds      float64 `json:"seconds"`
}

func ebParseExport(t *testing.T, out []byte) ebExportResult {
	t.Helper()
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	var res ebExportResult
	if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil || res.SHA256 == "" {
		t.Fatalf("dvcr export -o json: no result on the last line (%v): %s", err, lines[len(lines)-1])
	}
	return res
}

// ebSkopeo copies base/repo:latest into dir with `skopeo copy ... dir:`
// and returns the layer's file there.
func ebSkopeo(t *testing.T, base, repo, dir string) (ibTimedRun, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	src := "docker://" + strings.TrimPrefix(base, "http://") + "/" + repo + ":latest"
	tm, err := ibRunTimed(t, &stdout, &stderr, "skopeo", "copy", "-q", "--src-tls-verify=false", src, "dir:"+dir)
	if err != nil {
		t.Fatalf("skopeo copy %s: %v\n%s", src, err, stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(data, &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("skopeo's manifest.json: %v: %s", err, data)
	}
	_, hexDigest, _ := strings.Cut(m.Layers[0].Digest, ":")
	return tm, filepath.Join(dir, hexDigest)
}

// ebFsync fsyncs a file.
func ebFsync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ebAllocated is the space a file takes on disk (du).
func ebAllocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}
