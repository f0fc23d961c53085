package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// The tests share one build (two platforms, four binaries): it is written to
// a directory of TestMain and pushed to an in-memory registry on 127.0.0.1.
var (
	testRegistry *httptest.Server
	testOut      string

	fixtureOnce   sync.Once
	fixture       *result
	fixtureStdout string
	fixtureErr    error
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dvcr-image-test-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "image test: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	testOut = dir
	// httptest listens on 127.0.0.1; the registry keeps blobs in memory.
	testRegistry = httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer testRegistry.Close()
	return m.Run()
}

// pushRef is where the shared build is pushed.
func pushRef() string {
	return strings.TrimPrefix(testRegistry.URL, "http://") + "/dvcr/dvcr:test"
}

// build runs the command with args (plus --root) and returns the result and
// what it printed.
func build(t *testing.T, args ...string) (*result, string) {
	t.Helper()
	args = append([]string{"--root", dvcrtest.RepoRoot(t)}, args...)
	opts, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(%q): %v", args, err)
	}
	var stdout, stderr bytes.Buffer
	res, err := run(t.Context(), opts, &stdout, &stderr)
	if err != nil {
		t.Fatalf("image %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	t.Logf("image %s:\n%s%s", strings.Join(args, " "), stderr.String(), stdout.String())
	return res, stdout.String()
}

// built is the shared build, made by the first test that needs it.
func built(t *testing.T) (*result, string) {
	t.Helper()
	fixtureOnce.Do(func() {
		defer func() {
			if fixture == nil && fixtureErr == nil {
				fixtureErr = fmt.Errorf("the shared build failed in an earlier test")
			}
		}()
		fixture, fixtureStdout = build(t, "--out", filepath.Join(testOut, "first"), "--push", pushRef())
	})
	if fixture == nil {
		t.Fatalf("no shared build: %v", fixtureErr)
	}
	return fixture, fixtureStdout
}

// TestReproducible builds a second time into another directory: the index,
// every manifest and every output file must be the same bytes.
func TestReproducible(t *testing.T) {
	first, _ := built(t)
	second, _ := build(t, "--out", t.TempDir())
	if first.digest != second.digest {
		t.Fatalf("index digest: first %s, second %s", first.digest, second.digest)
	}
	for i, pi := range first.images {
		a, b := mustDigest(t, pi.image), mustDigest(t, second.images[i].image)
		if a != b {
			t.Errorf("linux/%s manifest: first %s, second %s", pi.arch, a, b)
		}
	}
	files := []string{filepath.Join("oci", "index.json")}
	for _, pi := range first.images {
		files = append(files, filepath.Base(first.tarballPath(pi.arch)))
	}
	for _, f := range files {
		if x, y := fileSum(t, filepath.Join(first.out, f)), fileSum(t, filepath.Join(second.out, f)); x != y {
			t.Errorf("%s differs between the two runs", f)
		}
	}
	t.Logf("index digest of both runs: %s", first.digest)
}

// TestPush pulls the pushed index back from the registry: same digest, same
// platform manifests.
func TestPush(t *testing.T) {
	res, stdout := built(t)
	if !strings.Contains(stdout, "pushed "+res.pushed+"@"+res.digest.String()) {
		t.Errorf("the output does not report the push:\n%s", stdout)
	}
	ref, err := name.ParseReference(pushRef())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pulling %s back: %v", ref, err)
	}
	if got := mustDigest(t, idx); got != res.digest {
		t.Fatalf("pulled index %s, built %s", got, res.digest)
	}
	for _, pi := range res.images {
		p := platform(pi.arch)
		img, err := remote.Image(ref, remote.WithContext(t.Context()), remote.WithPlatform(p))
		if err != nil {
			t.Fatalf("pulling %s for %s: %v", ref, p, err)
		}
		if got, want := mustDigest(t, img), mustDigest(t, pi.image); got != want {
			t.Errorf("%s: pulled %s, built %s", p, got, want)
		}
	}
}

// TestParseFlags covers the defaults and the refusals of the command line.
func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		arches  []string
		push    string
		wantErr string
	}{
		{args: nil, arches: []string{"amd64", "arm64"}},
		{args: []string{"--arch", "arm64", "--push", "r.example/dvcr:1"}, arches: []string{"arm64"}, push: "r.example/dvcr:1"},
		{args: []string{"--arch", " , "}, wantErr: "no architecture"},
		{args: []string{"extra"}, wantErr: "unexpected arguments"},
		{args: []string{"--nope"}, wantErr: "not defined"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(o.arches, ",") != strings.Join(tt.arches, ",") || o.push != tt.push {
				t.Errorf("arches %q push %q, want %q %q", o.arches, o.push, tt.arches, tt.push)
			}
			if o.out != "_out/image" || o.goCmd != "go" || o.tag != "" {
				t.Errorf("defaults: out %q go %q tag %q", o.out, o.goCmd, o.tag)
			}
		})
	}
}

// digester is an image or an index.
type digester interface{ Digest() (v1.Hash, error) }

func mustDigest(t *testing.T, d digester) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatalf("digest: %v", err)
	}
	return h
}

func fileSum(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
