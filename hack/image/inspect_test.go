package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layoutIndex is the image index the layout on disk is tagged with; it checks
// the descriptor of index.json on the way.
func layoutIndex(t *testing.T, res *result) v1.ImageIndex {
	t.Helper()
	p, err := layout.FromPath(res.layoutDir())
	if err != nil {
		t.Fatalf("opening the layout: %v", err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatalf("index.json: %v", err)
	}
	im, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json has %d descriptors, want 1 (the image index)", len(im.Manifests))
	}
	desc := im.Manifests[0]
	want := map[string]string{refNameAnnotation: res.reference.TagStr(), containerdNameAnnotation: res.reference.Name()}
	if desc.MediaType != types.OCIImageIndex || desc.Digest != res.digest || !reflect.DeepEqual(desc.Annotations, want) {
		t.Errorf("index.json descriptor: %s %s %v, want %s %s %v", desc.MediaType, desc.Digest, desc.Annotations, types.OCIImageIndex, res.digest, want)
	}
	idx, err := top.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatalf("the image index in the layout: %v", err)
	}
	return idx
}

// layoutImage is the image of linux/arch in the layout on disk.
func layoutImage(t *testing.T, res *result, arch string) v1.Image {
	t.Helper()
	idx := layoutIndex(t, res)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := platform(arch)
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.Equals(want) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatalf("%s: %v", want, err)
			}
			return img
		}
	}
	t.Fatalf("no %s image in the index", want)
	return nil
}

// TestIndex checks the index: media type, annotations, both platforms.
func TestIndex(t *testing.T) {
	res, _ := built(t)
	if res.reference.Name() != "ghcr.io/dvcr/dvcr:"+res.source.version {
		t.Errorf("default reference %s, want ghcr.io/dvcr/dvcr:%s", res.reference, res.source.version)
	}
	im, err := layoutIndex(t, res).IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || !reflect.DeepEqual(im.Annotations, labels(res.source)) {
		t.Errorf("index: %s %v, want %s %v", im.MediaType, im.Annotations, types.OCIImageIndex, labels(res.source))
	}
	var got []string
	for _, d := range im.Manifests {
		got = append(got, d.Platform.String())
	}
	if want := []string{"linux/amd64", "linux/arm64/v8"}; !slices.Equal(got, want) {
		t.Errorf("platforms %q, want %q", got, want)
	}
	for key, want := range map[string]string{
		"org.opencontainers.image.source":   "https://github.com/dvcr/dvcr",
		"org.opencontainers.image.version":  res.source.version,
		"org.opencontainers.image.revision": res.source.revision,
		"org.opencontainers.image.created":  res.source.created.Format(time.RFC3339),
	} {
		if im.Annotations[key] != want || want == "" {
			t.Errorf("annotation %s = %q, want %q", key, im.Annotations[key], want)
		}
	}
}

// TestConfig checks each platform's manifest and config.
func TestConfig(t *testing.T) {
	res, _ := built(t)
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			img := layoutImage(t, res, arch)
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON ||
				len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
				t.Errorf("media types: manifest %s config %s layers %v", m.MediaType, m.Config.MediaType, m.Layers)
			}
			if !reflect.DeepEqual(m.Annotations, labels(res.source)) {
				t.Errorf("manifest annotations %v, want %v", m.Annotations, labels(res.source))
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			c := cf.Config
			want := v1.Config{
				User: "64535:64535", Entrypoint: []string{"dvcr"},
				Cmd:          []string{"serve", "--config", "/etc/docker/registry/config.yml"},
				Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
				WorkingDir:   "/",
				ExposedPorts: map[string]struct{}{"5000/tcp": {}, "5001/tcp": {}},
				Labels:       labels(res.source),
			}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("config:\n got %+v\nwant %+v", c, want)
			}
			if cf.OS != "linux" || cf.Architecture != arch || !cf.Created.Time.Equal(res.source.created) {
				t.Errorf("os %s arch %s created %s", cf.OS, cf.Architecture, cf.Created.Time)
			}
		})
	}
}

// tarFile is one entry of the layer, as the test expects it.
type tarFile struct {
	typ      byte
	mode     int64
	uid, gid int
}

// readLayer returns the headers and the contents of the image's only layer.
func readLayer(t *testing.T, img v1.Image) ([]*tar.Header, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var headers []*tar.Header
	data := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return headers, data
		}
		if err != nil {
			t.Fatalf("reading the layer: %v", err)
		}
		headers = append(headers, h)
		if data[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLayer checks every entry of the amd64 layer: names, order, types,
// modes, owners, timestamps, and the contents of the small files.
func TestLayer(t *testing.T) {
	res, _ := built(t)
	headers, data := readLayer(t, layoutImage(t, res, "amd64"))
	dir := func(mode int64) tarFile { return tarFile{tar.TypeDir, mode, 0, 0} }
	file := func(mode int64) tarFile { return tarFile{tar.TypeReg, mode, 0, 0} }
	want := map[string]tarFile{
		"etc/": dir(0o755), "etc/docker/": dir(0o755), "etc/docker/registry/": dir(0o755),
		"etc/group": file(0o644), "etc/passwd": file(0o644),
		"etc/ssl/": dir(0o755), "etc/ssl/certs/": dir(0o755), "etc/ssl/certs/ca-certificates.crt": file(0o644),
		"tmp/": dir(0o1777),
		"usr/": dir(0o755), "usr/local/": dir(0o755), "usr/local/bin/": dir(0o755),
		"usr/local/bin/dvcr": file(0o755), "usr/local/bin/dvcr-cleaner": file(0o755),
		"var/": dir(0o755), "var/lib/": dir(0o755), "var/lib/registry/": {tar.TypeDir, 0o755, dvcrID, dvcrID},
		"var/run/": dir(0o755), "var/run/dvcr/": {tar.TypeDir, 0o755, dvcrID, dvcrID},
	}
	got := map[string]tarFile{}
	var names []string
	for _, h := range headers {
		got[h.Name] = tarFile{h.Typeflag, h.Mode, h.Uid, h.Gid}
		names = append(names, h.Name)
		if !h.ModTime.Equal(res.source.created) {
			t.Errorf("%s: mtime %s, want the commit time %s", h.Name, h.ModTime, res.source.created)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries:\n got %v\nwant %v", got, want)
	}
	if !slices.IsSorted(names) {
		t.Errorf("entries are not sorted: %q", names)
	}
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data["etc/ssl/certs/ca-certificates.crt"], ca) {
		t.Errorf("the CA bundle differs from the host's %s", caBundle)
	}
	for path, line := range map[string]string{
		"etc/passwd": "dvcr:x:64535:64535:dvcr:/nonexistent:/sbin/nologin",
		"etc/group":  "dvcr:x:64535:",
	} {
		if !slices.Contains(strings.Split(string(data[path]), "\n"), line) {
			t.Errorf("%s has no line %q:\n%s", path, line, data[path])
		}
	}
}

// TestDockerArchive loads each `docker load` archive back: same config (the
// image ID docker shows), same layer. The archive has no manifest of its own
// (docker rebuilds a Docker schema 2 one, without annotations), so the
// manifest digest cannot match the layout's; the config and layers are what
// it carries.
func TestDockerArchive(t *testing.T) {
	res, _ := built(t)
	for _, pi := range res.images {
		t.Run(pi.arch, func(t *testing.T) {
			path := res.tarballPath(pi.arch)
			img, err := tarball.ImageFromPath(path, &res.reference)
			if err != nil {
				t.Fatalf("loading %s: %v", path, err)
			}
			want := layoutImage(t, res, pi.arch)
			if got, exp := configName(t, img), configName(t, want); got != exp {
				t.Errorf("image ID (config digest) %s, layout's %s", got, exp)
			}
			if got, exp := layerDigests(t, img), layerDigests(t, want); !slices.Equal(got, exp) {
				t.Errorf("layers %v, layout's %v", got, exp)
			}
			tags := archiveTags(t, path)
			if !slices.Equal(tags, []string{res.reference.Name()}) {
				t.Errorf("RepoTags %q, want [%s]", tags, res.reference.Name())
			}
		})
	}
}

func configName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

// archiveTags is RepoTags of manifest.json in a docker archive.
func archiveTags(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no manifest.json: %v", path, err)
		}
		if h.Name == "manifest.json" {
			var m tarball.Manifest
			if err := json.NewDecoder(tr).Decode(&m); err != nil || len(m) != 1 {
				t.Fatalf("manifest.json: %d entries, %v", len(m), err)
			}
			return m[0].RepoTags
		}
	}
}

// TestBinaryRuns extracts dvcr and dvcr-cleaner of this machine's
// architecture from the layer and runs them: the static binaries start.
func TestBinaryRuns(t *testing.T) {
	res, _ := built(t)
	_, data := readLayer(t, layoutImage(t, res, runtime.GOARCH))
	dir := t.TempDir()
	for _, c := range commands {
		bin := filepath.Join(dir, c.name)
		if err := os.WriteFile(bin, data["usr/local/bin/"+c.name], 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(t.Context(), bin, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --help: %v\n%s", c.name, err, out)
		}
		if !strings.Contains(string(out), "Usage:") {
			t.Errorf("%s --help printed no usage:\n%s", c.name, out)
		}
	}
}
