package exporter

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// qemuTool is the path of a qemu-utils program; the test fails without
// it (make test's set-up installs qemu-utils): a skipped check is no check.
func qemuTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (apt-get install -y qemu-utils): %v", name, err)
	}
	return path
}

func runQemu(t *testing.T, tool string, args ...string) {
	t.Helper()
	if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", filepath.Base(tool), args, err, out)
	}
}

// qemuSource is a raw disk of 8 MiB: text that compresses about 3:1, a
// MiB of one byte (clusters qemu compresses to a few bytes each, packed
// back to back: the densest map a real image has), holes, and a last
// piece that ends mid-cluster.
func qemuSource(t *testing.T, dir string) string {
	raw := make([]byte, 8<<20)
	copy(raw[4096:], clusterData(200<<10, 1))
	copy(raw[3<<20:], bytes.Repeat([]byte{0x01}, 1<<20))
	copy(raw[6<<20+512:], clusterData(5000, 2))
	copy(raw[8<<20-1536:], clusterData(1536, 3))
	path := filepath.Join(dir, "src.raw")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestQemuQcow2ToRaw: the images qemu-img writes (cluster sizes 512 B to
// 2 MiB, compressed with zlib and zstd, preallocated, with an internal
// snapshot whose clusters the active tables share) are not refused by the
// bound on what the map lists, and convert equal to `qemu-img convert -O
// raw`.
func TestQemuQcow2ToRaw(t *testing.T) {
	qemu, qemuIO := qemuTool(t, "qemu-img"), qemuTool(t, "qemu-io")
	dir := t.TempDir()
	src := qemuSource(t, dir)
	for _, c := range []struct {
		name     string
		opts     []string
		snapshot bool // then written over: the active tables share the rest
	}{
		{"64k", nil, false},
		{"512", []string{"-o", "cluster_size=512"}, false},
		{"2M", []string{"-o", "cluster_size=2M"}, false},
		{"v2", []string{"-o", "compat=0.10"}, false},
		{"compressed 64k", []string{"-c"}, false},
		{"compressed 512", []string{"-c", "-o", "cluster_size=512"}, false},
		{"compressed 2M", []string{"-c", "-o", "cluster_size=2M"}, false},
		{"zstd 512", []string{"-c", "-o", "compression_type=zstd,cluster_size=512"}, false},
		{"preallocation metadata", []string{"-o", "preallocation=metadata"}, false},
		{"preallocation metadata 512", []string{"-o", "preallocation=metadata,cluster_size=512"}, false},
		{"preallocation falloc", []string{"-o", "preallocation=falloc"}, false},
		{"preallocation full", []string{"-o", "preallocation=full"}, false},
		{"snapshot", nil, true},
		{"snapshot compressed 4k", []string{"-c", "-o", "cluster_size=4k"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.qcow2")
			runQemu(t, qemu, append(append([]string{"convert", "-O", "qcow2"}, c.opts...), src, img)...)
			if c.snapshot {
				runQemu(t, qemu, "snapshot", "-c", "s1", img)
				runQemu(t, qemuIO, "-f", "qcow2", "-c", "write -P 0x5a 3M 64k", "-c", "write -z 4096 8k", "-c", "write -P 0x77 7M 4k", img)
			}
			want := filepath.Join(t.TempDir(), "want.raw")
			runQemu(t, qemu, "convert", "-O", "raw", img, want)
			file, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			wantRaw, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := testToRaw(mapQcow2, file)
			if err != nil {
				t.Fatalf("%d-byte file: %v", len(file), err)
			}
			if !bytes.Equal(got, wantRaw) {
				t.Errorf("the raw disk differs from qemu-img's")
			}
		})
	}
}
