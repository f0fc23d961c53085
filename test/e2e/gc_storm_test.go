package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/admin"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/importer/registryclient"
)

const (
	stormPushers         = 4
	stormImagesPerPusher = 16
	stormMaxAttempts     = 100
)

// TestGCPushStorm races pushes against garbage collection run back to back
// with gracePeriod 0s. Each image's blobs are uploaded to a source
// repository no resource keeps (so every run deletes it) and mounted from
// there; an attempt that loses its blobs to a run starts over. Every push
// the registry acknowledged must pull whole at the end. Each run holds its
// condemned set a moment before deleting it, so that pushes race content
// that is condemned but still in storage.
func TestGCPushStorm(t *testing.T) {
	e := newGCEnv(t, noGrace, gc.HoldEnv+"=100ms")
	e.cluster.CreateNamespace(t, "storm")
	for p := range stormPushers {
		for i := range stormImagesPerPusher {
			e.cluster.CreateVI(t, "storm", stormName(p, i))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	shared := randomBytes(t, 16<<10)

	stop := make(chan struct{})
	var runs, runsDuringPushes atomic.Int64
	gcDone := make(chan error, 1)
	go func() { gcDone <- e.gcUntil(ctx, stop, &runs) }()

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		pushed = map[string]stormImage{}
		lost   atomic.Int64 // attempts that lost their blobs to a run
	)
	for p := range stormPushers {
		wg.Go(func() {
			client := stormClient(t, ctx, e)
			for i := range stormImagesPerPusher {
				img, retries, err := pushStormImage(ctx, client, p, i, shared)
				lost.Add(int64(retries))
				if err != nil {
					t.Errorf("%s: %v", stormName(p, i), err)
					continue
				}
				mu.Lock()
				pushed[stormName(p, i)] = img
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	runsDuringPushes.Store(runs.Load())
	close(stop)
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	// One more run with nothing racing it, then every acknowledged push pulls.
	if rec, out := e.run(t); !rec.Succeeded() {
		t.Fatalf("final gc run: %+v\n%s", rec, out.Stderr)
	}
	t.Logf("%d images pushed, %d attempts started over, %d gc runs during the pushes", len(pushed), lost.Load(), runsDuringPushes.Load())
	if runsDuringPushes.Load() < 3 {
		t.Errorf("only %d gc runs overlapped the pushes: the race was not exercised", runsDuringPushes.Load())
	}
	if len(pushed) != stormPushers*stormImagesPerPusher {
		t.Errorf("%d of %d images pushed", len(pushed), stormPushers*stormImagesPerPusher)
	}
	client := stormClient(t, ctx, e)
	for name, img := range pushed {
		img.verify(t, ctx, client, "vi/storm/"+name)
	}
}

func stormName(p, i int) string { return fmt.Sprintf("img-%d-%02d", p, i) }

func stormClient(t *testing.T, ctx context.Context, e *gcEnv) *registryclient.Client {
	c, err := registryclient.New(ctx, "http://"+e.srv.Addr, nil, registryclient.Options{MaxWait: 20 * time.Millisecond})
	if err != nil {
		t.Error(err)
	}
	return c
}

// gcUntil runs garbage collection back to back through the admin socket
// until stop is closed, with a random pause between runs.
func (e *gcEnv) gcUntil(ctx context.Context, stop <-chan struct{}, runs *atomic.Int64) error {
	client, err := admin.Dial(ctx, e.srv.AdminSock)
	if err != nil {
		return err
	}
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		raw, err := client.RunGC(ctx, "manual", nil)
		if err != nil {
			return fmt.Errorf("gc run %d: %w", runs.Load()+1, err)
		}
		var rec gc.Result
		if err := json.Unmarshal(raw, &rec); err != nil || !rec.Succeeded() {
			return fmt.Errorf("gc run %d: %v %s", runs.Load()+1, err, raw)
		}
		runs.Add(1)
		// A pause of up to a push's length: with none, gracePeriod 0s
		// takes every push's blobs before its manifest and none ever
		// completes; with it some complete and the others race a run.
		time.Sleep(time.Duration(mrand.IntN(100)) * time.Millisecond)
	}
}

// stormImage is what a successful push stored.
type stormImage struct {
	manifest digest.Digest
	blobs    []digest.Digest
}

func (img stormImage) verify(t *testing.T, ctx context.Context, c *registryclient.Client, repo string) {
	t.Helper()
	m, err := c.GetManifest(ctx, repo, "latest")
	if err != nil {
		t.Errorf("acknowledged push lost: %v", err)
		return
	}
	if m.Digest != img.manifest {
		t.Errorf("%s:latest is %s, pushed %s", repo, m.Digest, img.manifest)
	}
	for _, d := range img.blobs {
		if _, err := c.GetBlob(ctx, repo, d); err != nil { // checks the digest
			t.Errorf("acknowledged push lost a blob: %v", err)
		}
	}
}

// pushStormImage pushes one image, starting over (from a new source
// repository) when a run took its blobs before its manifest was in.
func pushStormImage(ctx context.Context, c *registryclient.Client, p, i int, shared []byte) (stormImage, int, error) {
	name := stormName(p, i)
	layer := randomBytesCtx(32 << 10)
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Labels":{"image":%q}},"rootfs":{"type":"layers","diff_ids":[]}}`, name))
	var lastErr error
	for attempt := range stormMaxAttempts {
		src := fmt.Sprintf("vi/storm-src/%s-%d", name, attempt)
		img, err := pushViaSource(ctx, c, src, "vi/storm/"+name, config, layer, shared)
		if err == nil {
			return img, attempt, nil
		}
		if ctx.Err() != nil {
			return stormImage{}, attempt, err
		}
		lastErr = err
	}
	return stormImage{}, stormMaxAttempts, fmt.Errorf("no push succeeded in %d attempts; last: %w", stormMaxAttempts, lastErr)
}

func pushViaSource(ctx context.Context, c *registryclient.Client, src, target string, config []byte, layers ...[]byte) (stormImage, error) {
	blobs := append([][]byte{config}, layers...)
	var img stormImage
	for _, data := range blobs {
		d, err := c.PutBlob(ctx, src, data)
		if err != nil {
			return img, err
		}
		err = c.MountBlob(ctx, target, src, d)
		if errors.Is(err, registryclient.ErrMountRefused) {
			_, err = c.PutBlob(ctx, target, data) // the source went meanwhile
		}
		if err != nil {
			return img, err
		}
		img.blobs = append(img.blobs, d)
	}
	man := v1.Manifest{MediaType: v1.MediaTypeImageManifest, Config: v1.Descriptor{
		MediaType: v1.MediaTypeImageConfig, Digest: img.blobs[0], Size: int64(len(config)),
	}}
	man.SchemaVersion = 2
	for i, l := range layers {
		man.Layers = append(man.Layers, v1.Descriptor{MediaType: v1.MediaTypeImageLayer, Digest: img.blobs[i+1], Size: int64(len(l))})
	}
	data, err := json.Marshal(man)
	if err != nil {
		return img, err
	}
	m := &registryclient.Manifest{MediaType: v1.MediaTypeImageManifest, Digest: digest.FromBytes(data), Bytes: data}
	if err := c.PutManifest(ctx, target, "latest", m); err != nil {
		return img, err
	}
	img.manifest = m.Digest
	return img, nil
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	return randomBytesCtx(n)
}

func randomBytesCtx(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
