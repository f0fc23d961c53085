package registry_test

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestTransport: an image pushed and pulled through the in-process
// transport, by a client written by others (go-containerregistry).
func TestTransport(t *testing.T) {
	srv, _, _ := newTestRegistry(t)
	img := randomImage(t)
	ref, err := name.ParseReference("dvcr.local/cvi/in-process:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(srv.Transport())); err != nil {
		t.Fatalf("push through the in-process transport: %v", err)
	}
	got, err := remote.Image(ref, remote.WithTransport(srv.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, err := got.Digest(); err != nil || d != want {
		t.Fatalf("pulled %s (%v), pushed %s", d, err, want)
	}
	layers, err := got.Layers()
	if err != nil || len(layers) == 0 {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := rc.Read(buf); err != nil {
			break
		}
	}
}
