package diskimage_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/registry/diskimage"
)

func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
}

// qemuImgCreate makes a disk image with `qemu-img create`.
func qemuImgCreate(t *testing.T, path, format, size string) {
	t.Helper()
	out, err := exec.Command("qemu-img", "create", "-f", format, path, size).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img create -f %s %s %s: %v\n%s", format, path, size, err, out)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestInspect(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	tests := []struct {
		name            string
		file            string
		make            func(t *testing.T, path string)
		wantFormat      string
		wantVirtualSize int64
	}{
		{
			name:            "qcow2",
			file:            "disk.qcow2",
			make:            func(t *testing.T, p string) { qemuImgCreate(t, p, "qcow2", "64M") },
			wantFormat:      "qcow2",
			wantVirtualSize: 64 << 20,
		},
		{
			name:            "raw",
			file:            "disk.img",
			make:            func(t *testing.T, p string) { qemuImgCreate(t, p, "raw", "1M") },
			wantFormat:      "raw",
			wantVirtualSize: 1 << 20,
		},
		{
			name:            "vmdk",
			file:            "disk.vmdk",
			make:            func(t *testing.T, p string) { qemuImgCreate(t, p, "vmdk", "16M") },
			wantFormat:      "vmdk",
			wantVirtualSize: 16 << 20,
		},
		{
			// qemu-img calls any file it cannot probe a raw image: a text
			// file is "raw" with its size rounded up to a 512-byte sector.
			// Inspect does not reject it.
			name:            "text file is raw",
			file:            "notes.txt",
			make:            func(t *testing.T, p string) { writeFile(t, p, []byte("hello, this is not a disk image\n")) },
			wantFormat:      "raw",
			wantVirtualSize: 512,
		},
		{
			name:            "empty file is raw",
			file:            "empty.img",
			make:            func(t *testing.T, p string) { writeFile(t, p, nil) },
			wantFormat:      "raw",
			wantVirtualSize: 0,
		},
		{
			name:            "file name with a colon",
			file:            "disk:1.qcow2",
			make:            func(t *testing.T, p string) { qemuImgCreate(t, p, "qcow2", "2M") },
			wantFormat:      "qcow2",
			wantVirtualSize: 2 << 20,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			tt.make(t, path)
			info, err := diskimage.Inspect(context.Background(), path)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			want := diskimage.Info{Format: tt.wantFormat, VirtualSize: tt.wantVirtualSize, Size: fileSize(t, path)}
			if info != want {
				t.Errorf("Inspect = %+v, want %+v", info, want)
			}
		})
	}
}

// TestInspectRelativeNames: qemu-img reads "name:rest" as a protocol and
// "-name" as an option; Inspect must hand it a path it takes as a file.
func TestInspectRelativeNames(t *testing.T) {
	needQemuImg(t)
	for _, name := range []string{"disk:1.qcow2", "-disk.qcow2", "json:{}"} {
		t.Run(name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			qemuImgCreate(t, "./"+name, "qcow2", "1M")
			info, err := diskimage.Inspect(context.Background(), name)
			if err != nil {
				t.Fatalf("Inspect(%q): %v", name, err)
			}
			if info.Format != "qcow2" || info.VirtualSize != 1<<20 {
				t.Errorf("Inspect(%q) = %+v", name, info)
			}
		})
	}
}

func TestInspectErrors(t *testing.T) {
	needQemuImg(t)
	dir := t.TempDir()
	// A qcow2 header with an unsupported version: qemu-img refuses it.
	corrupt := append([]byte("QFI\xfb\x00\x00\x00\x63"), make([]byte, 504)...)
	tests := []struct {
		name   string
		setup  func(t *testing.T) string
		wantIs error
	}{
		{
			name:   "missing file",
			setup:  func(t *testing.T) string { return filepath.Join(dir, "missing.qcow2") },
			wantIs: os.ErrNotExist,
		},
		{
			name: "corrupt qcow2",
			setup: func(t *testing.T) string {
				p := filepath.Join(dir, "corrupt.qcow2")
				writeFile(t, p, corrupt)
				return p
			},
			wantIs: diskimage.ErrNotDiskImage,
		},
		{
			name:   "directory",
			setup:  func(t *testing.T) string { return dir },
			wantIs: diskimage.ErrNotDiskImage,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := diskimage.Inspect(context.Background(), tt.setup(t))
			if err == nil {
				t.Fatalf("Inspect = %+v, want an error", info)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want %v", err, tt.wantIs)
			}
		})
	}
}

func TestWriteLayout(t *testing.T) {
	needQemuImg(t)
	tests := []struct {
		name string
		file string
		tag  string
		make func(t *testing.T, path string)
	}{
		{
			name: "qcow2",
			file: "ubuntu.qcow2",
			tag:  "latest",
			make: func(t *testing.T, p string) { qemuImgCreate(t, p, "qcow2", "64M") },
		},
		{
			// Random content of a size that is not a multiple of 512, so
			// the tar padding and the exact bytes are checked.
			name: "raw with odd size",
			file: "random.img",
			tag:  "v1.2.3",
			make: func(t *testing.T, p string) { writeFile(t, p, randomBytes(t, 100_003)) },
		},
		{
			name: "long file name",
			file: strings.Repeat("very-long-name-", 10) + ".qcow2",
			tag:  "v1",
			make: func(t *testing.T, p string) { qemuImgCreate(t, p, "qcow2", "1M") },
		},
		{
			name: "empty raw",
			file: "empty.img",
			tag:  "empty",
			make: func(t *testing.T, p string) { writeFile(t, p, nil) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), tt.file)
			tt.make(t, src)
			info, err := diskimage.Inspect(context.Background(), src)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			dir := filepath.Join(t.TempDir(), "layout") // created by WriteLayout
			img, err := diskimage.WriteLayout(src, info, dir, tt.tag)
			if err != nil {
				t.Fatalf("WriteLayout: %v", err)
			}
			checkLayout(t, dir, tt.tag, src, info, img)
		})
	}
}

// checkLayout verifies an OCI image layout written by WriteLayout.
func checkLayout(t *testing.T, dir, tag, src string, info diskimage.Info, img *diskimage.Image) {
	t.Helper()
	srcBytes, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}

	// oci-layout
	var layout v1.ImageLayout
	readJSON(t, filepath.Join(dir, v1.ImageLayoutFile), &layout)
	if layout.Version != v1.ImageLayoutVersion {
		t.Errorf("oci-layout version = %q", layout.Version)
	}

	// Every blob hashes to its name; no temporary files are left.
	blobs := filepath.Join(dir, "blobs", "sha256")
	entries, err := os.ReadDir(blobs)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("blobs = %v, want manifest, config and layer", names)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(blobs, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != e.Name() {
			t.Errorf("blob %s hashes to %s", e.Name(), got)
		}
	}

	// index.json names the tag and the manifest.
	var index v1.Index
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	if index.SchemaVersion != 2 || len(index.Manifests) != 1 {
		t.Fatalf("index.json = %+v", index)
	}
	desc := index.Manifests[0]
	if got := desc.Annotations[v1.AnnotationRefName]; got != tag {
		t.Errorf("index.json ref name = %q, want %q", got, tag)
	}
	if desc.MediaType != v1.MediaTypeImageManifest || desc.Digest != img.ManifestDigest || desc.Size != int64(len(img.ManifestBytes)) {
		t.Errorf("index.json manifest descriptor = %+v, image %s (%d bytes)", desc, img.ManifestDigest, len(img.ManifestBytes))
	}

	// The manifest blob is what Image reports.
	manifestBytes := readBlob(t, dir, img.ManifestDigest)
	if !bytes.Equal(manifestBytes, img.ManifestBytes) || digest.FromBytes(img.ManifestBytes) != img.ManifestDigest {
		t.Errorf("ManifestBytes differ from the manifest blob")
	}
	var manifest v1.Manifest
	if err := json.Unmarshal(manifestBytes, &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest.SchemaVersion != 2 || manifest.MediaType != v1.MediaTypeImageManifest || len(manifest.Layers) != 1 {
		t.Fatalf("manifest = %+v", manifest)
	}
	if manifest.Config.Digest != img.Config.Digest || manifest.Layers[0].Digest != img.Layer.Digest {
		t.Errorf("manifest %+v does not match Image %+v / %+v", manifest, img.Config, img.Layer)
	}

	// The layer: an uncompressed tar, a whole number of 512-byte blocks,
	// holding exactly disk/<file> with the file's bytes.
	layerDesc := manifest.Layers[0]
	if layerDesc.MediaType != v1.MediaTypeImageLayer {
		t.Errorf("layer media type = %q", layerDesc.MediaType)
	}
	layer := readBlob(t, dir, layerDesc.Digest)
	if int64(len(layer)) != layerDesc.Size {
		t.Errorf("layer is %d bytes, descriptor says %d", len(layer), layerDesc.Size)
	}
	if len(layer)%512 != 0 {
		t.Errorf("layer size %d is not a multiple of 512", len(layer))
	}
	tr := tar.NewReader(bytes.NewReader(layer))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("layer tar: %v", err)
		}
		names = append(names, hdr.Name)
		if want := diskimage.LayerDir + "/" + filepath.Base(src); hdr.Name != want {
			t.Errorf("tar entry %q, want %q", hdr.Name, want)
			continue
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size != int64(len(srcBytes)) {
			t.Errorf("tar entry type %q size %d, want a regular file of %d bytes", hdr.Typeflag, hdr.Size, len(srcBytes))
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(content, srcBytes) {
			t.Errorf("tar entry content differs from the disk file")
		}
	}
	if len(names) != 1 {
		t.Errorf("tar entries = %q, want exactly one", names)
	}

	// The config: platform, the three labels, diffID = layer digest.
	if manifest.Config.MediaType != v1.MediaTypeImageConfig {
		t.Errorf("config media type = %q", manifest.Config.MediaType)
	}
	var config v1.Image
	if err := json.Unmarshal(readBlob(t, dir, manifest.Config.Digest), &config); err != nil {
		t.Fatal(err)
	}
	if config.OS != "linux" || config.Architecture != "amd64" {
		t.Errorf("platform = %s/%s", config.OS, config.Architecture)
	}
	wantLabels := map[string]string{
		diskimage.LabelFormat:      info.Format,
		diskimage.LabelVirtualSize: strconv.FormatInt(info.VirtualSize, 10),
		diskimage.LabelSize:        strconv.FormatInt(int64(len(srcBytes)), 10),
	}
	if len(config.Config.Labels) != len(wantLabels) {
		t.Errorf("labels = %v, want %v", config.Config.Labels, wantLabels)
	}
	for k, v := range wantLabels {
		if got := config.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if config.RootFS.Type != "layers" || len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != layerDesc.Digest {
		t.Errorf("rootfs = %+v, want the layer digest %s as the only diffID", config.RootFS, layerDesc.Digest)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readBlob(t *testing.T, dir string, d digest.Digest) []byte {
	t.Helper()
	if d.Algorithm() != digest.SHA256 {
		t.Fatalf("digest %s is not sha256", d)
	}
	data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestWriteLayoutLabelsFromInfo(t *testing.T) {
	// The labels come from the Info given, whatever qemu-img would say; the
	// layer is always the file itself.
	src := filepath.Join(t.TempDir(), "disk.iso")
	writeFile(t, src, randomBytes(t, 4096))
	info := diskimage.Info{Format: "iso", VirtualSize: 4096, Size: 4096}
	dir := t.TempDir()
	img, err := diskimage.WriteLayout(src, info, dir, "iso")
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, dir, "iso", src, info, img)
}

func TestWriteLayoutDeterministic(t *testing.T) {
	needQemuImg(t)
	src := filepath.Join(t.TempDir(), "disk.qcow2")
	qemuImgCreate(t, src, "qcow2", "8M")
	info, err := diskimage.Inspect(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	a, err := diskimage.WriteLayout(src, info, t.TempDir(), "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := diskimage.WriteLayout(src, info, t.TempDir(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if a.ManifestDigest != b.ManifestDigest || a.Layer.Digest != b.Layer.Digest || a.Config.Digest != b.Config.Digest {
		t.Errorf("two layouts of the same file differ: %s / %s", a.ManifestDigest, b.ManifestDigest)
	}
}

func TestWriteLayoutErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) (src, dir string)
	}{
		{
			name: "missing disk file",
			setup: func(t *testing.T) (string, string) {
				return filepath.Join(t.TempDir(), "missing.qcow2"), t.TempDir()
			},
		},
		{
			name: "layout dir is a file",
			setup: func(t *testing.T) (string, string) {
				src := filepath.Join(t.TempDir(), "disk.img")
				writeFile(t, src, []byte("x"))
				dir := filepath.Join(t.TempDir(), "file")
				writeFile(t, dir, nil)
				return src, dir
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dir := tt.setup(t)
			if img, err := diskimage.WriteLayout(src, diskimage.Info{Format: "raw"}, dir, "latest"); err == nil {
				t.Fatalf("WriteLayout = %+v, want an error", img)
			}
			if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
				t.Error("index.json written despite the error")
			}
		})
	}
}

// TestWriteLayoutSkopeo: skopeo, which pushes these layouts, reads the image
// and its labels.
func TestWriteLayoutSkopeo(t *testing.T) {
	needQemuImg(t)
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
	src := filepath.Join(t.TempDir(), "disk.qcow2")
	qemuImgCreate(t, src, "qcow2", "32M")
	info, err := diskimage.Inspect(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	img, err := diskimage.WriteLayout(src, info, dir, "v1")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("skopeo", "inspect", "oci:"+dir+":v1").Output()
	if err != nil {
		var stderr []byte
		if exitErr, ok := err.(*exec.ExitError); ok {
			stderr = exitErr.Stderr
		}
		t.Fatalf("skopeo inspect: %v\n%s", err, stderr)
	}
	var inspected struct {
		Digest digest.Digest
		Labels map[string]string
		Layers []digest.Digest
	}
	if err := json.Unmarshal(out, &inspected); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if inspected.Digest != img.ManifestDigest {
		t.Errorf("skopeo digest = %s, want %s", inspected.Digest, img.ManifestDigest)
	}
	if len(inspected.Layers) != 1 || inspected.Layers[0] != img.Layer.Digest {
		t.Errorf("skopeo layers = %v", inspected.Layers)
	}
	if inspected.Labels[diskimage.LabelFormat] != "qcow2" || inspected.Labels[diskimage.LabelVirtualSize] != strconv.Itoa(32<<20) {
		t.Errorf("skopeo labels = %v", inspected.Labels)
	}
}
