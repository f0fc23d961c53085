package registry_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/registry"
	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestOneDriverPerProcess: with the inmemory driver, an image pushed before
// a cache reset (what a garbage collection run ends with) is still served
// after it, and the driver the registry hands out holds it.
func TestOneDriverPerProcess(t *testing.T) {
	cfg, err := config.Parse("test", []byte("version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {inmemory: {}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := registry.NewServer(context.Background(), cfg, dvcrtest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	img := randomImage(t)
	ref, _ := name.ParseReference("dvcr.local/cvi/kept:latest")
	if err := remote.Write(ref, img, remote.WithTransport(srv.Transport())); err != nil {
		t.Fatal(err)
	}
	if err := srv.ResetCaches(); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	req, _ := http.NewRequest(http.MethodHead, "http://dvcr.local/v2/cvi/kept/blobs/"+d.String(), nil)
	resp, err := srv.Transport().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD of a pushed blob after a cache reset: %d, want 200", resp.StatusCode)
	}
	if _, err := remote.Image(ref, remote.WithTransport(srv.Transport())); err != nil {
		t.Fatalf("pull after the reset: %v", err)
	}
	entries, err := srv.Driver().List(context.Background(), "/docker/registry/v2/repositories/cvi")
	if err != nil || len(entries) != 1 {
		t.Fatalf("the registry's driver lists %v (%v), want the pushed repository", entries, err)
	}
}
