package gc

import (
	"context"
	"fmt"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/manifest/ocischema"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/storage"
)

// BenchmarkMarkAndSweep: 2,000 repositories and 20,000 blobs on the
// filesystem driver, written directly with PutContent. Each repository has
// a tagged image (config, 3 own layers, 1 of 100 shared layers); every other
// one an untagged older image (config, 2 layers); the rest are unreferenced
// blobs.
func BenchmarkMarkAndSweep(b *testing.B) {
	const repos = 2000
	later := func() time.Time { return time.Now().Add(time.Minute) }
	report := func(b *testing.B, stats SweepStats) {
		b.ReportMetric(float64(stats.Repositories), "repos")
		b.ReportMetric(float64(stats.BlobsTotal), "blobs")
		b.ReportMetric(float64(stats.BlobsDeleted), "deleted")
		b.ReportMetric(float64(stats.ManifestsDeleted), "manifests-deleted")
	}
	b.Run("dry-run", func(b *testing.B) {
		driver := sweepBenchStorage(b, b.TempDir(), repos)
		var stats SweepStats
		for b.Loop() {
			var err error
			stats, err = MarkAndSweep(context.Background(), driver, SweepOptions{DeleteUntagged: true, DryRun: true, Now: later})
			if err != nil {
				b.Fatal(err)
			}
		}
		report(b, stats)
	})
	b.Run("delete", func(b *testing.B) {
		var stats SweepStats
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			driver := sweepBenchStorage(b, b.TempDir(), repos)
			b.StartTimer()
			var err error
			stats, err = MarkAndSweep(context.Background(), driver, SweepOptions{DeleteUntagged: true, Now: later})
			if err != nil {
				b.Fatal(err)
			}
		}
		report(b, stats)
	})
}

func sweepBenchStorage(b *testing.B, dir string, repos int) storagedriver.StorageDriver {
	b.Helper()
	ctx := context.Background()
	driver, err := filesystem.FromParameters(map[string]any{"rootdirectory": dir})
	if err != nil {
		b.Fatal(err)
	}
	put := func(p string, content []byte) {
		if err := driver.PutContent(ctx, p, content); err != nil {
			b.Error(err)
		}
	}
	blob := func(content string) v1.Descriptor {
		d := digest.FromString(content)
		put(storage.BlobData(d), []byte(content))
		return v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(content))}
	}
	image := func(repo string, layers ...v1.Descriptor) digest.Digest {
		config := blob(fmt.Sprintf(`{"repo":%q,"layers":%d}`, repo, len(layers)))
		config.MediaType = v1.MediaTypeImageConfig
		m, err := ocischema.FromStruct(ocischema.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: v1.MediaTypeImageManifest,
			Config:    config,
			Layers:    layers,
		})
		if err != nil {
			b.Fatal(err)
		}
		_, payload, _ := m.Payload()
		d := digest.FromBytes(payload)
		put(storage.BlobData(d), payload)
		put(storage.RevisionLink(repo, d), []byte(d))
		for _, l := range append(layers, config) {
			put(path.Join(storage.RepositoryDir(repo), "_layers", "sha256", l.Digest.Encoded(), "link"), []byte(l.Digest))
		}
		return d
	}
	tag := func(repo string, d digest.Digest) {
		tags := path.Join(storage.RepositoryDir(repo), "_manifests", "tags", "latest")
		put(path.Join(tags, "current", "link"), []byte(d))
		put(path.Join(tags, "index", "sha256", d.Encoded(), "link"), []byte(d))
	}
	shared := make([]v1.Descriptor, 100)
	for i := range shared {
		shared[i] = blob(fmt.Sprintf("shared layer %d", i))
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	blobs := len(shared)
	for i := range repos {
		if i%2 == 0 {
			blobs += 4
		}
		blobs += 5
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			repo := fmt.Sprintf("vi/ns%02d/image-%04d", i%50, i)
			if i%2 == 0 {
				old := image(repo, blob(repo+" old 1"), blob(repo+" old 2"))
				tag(repo, old)
			}
			tag(repo, image(repo, blob(repo+" 1"), blob(repo+" 2"), blob(repo+" 3"), shared[i%len(shared)]))
		})
	}
	for i := blobs; i < 20000; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			blob(fmt.Sprintf("unreferenced %d", i))
		})
	}
	wg.Wait()
	return driver
}
