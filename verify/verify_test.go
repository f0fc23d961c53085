package verify

import (
	"context"
	"encoding/json"
	"path"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/storage"
)

// fixture is a store with one image (a config and a layer) tagged in two
// repositories.
type fixture struct {
	driver        *inmemory.Driver
	config, layer digest.Digest
	manifest      digest.Digest
	layerData     []byte
	stray         digest.Digest // an unreferenced blob, when a test adds one
}

var fixtureRepos = []string{"cvi/alpha", "vi/default/beta"}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{driver: inmemory.New(), layerData: []byte("the disk image layer, a few bytes long")}
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	f.config, f.layer = f.putBlob(t, cfg), f.putBlob(t, f.layerData)
	m, err := json.Marshal(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
		Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: f.config, Size: int64(len(cfg))},
		Layers: []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer, Digest: f.layer, Size: int64(len(f.layerData))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.manifest = f.putBlob(t, m)
	for _, repo := range fixtureRepos {
		f.link(t, layerLink(repo, f.config), f.config)
		f.link(t, layerLink(repo, f.layer), f.layer)
		f.link(t, storage.RevisionLink(repo, f.manifest), f.manifest)
		f.link(t, path.Join(storage.RepositoryDir(repo), "_manifests/tags/latest/current/link"), f.manifest)
		f.link(t, path.Join(storage.RepositoryDir(repo), "_manifests/tags/latest/index/sha256", f.manifest.Encoded(), "link"), f.manifest)
	}
	return f
}

func (f *fixture) putBlob(t *testing.T, data []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(data)
	if err := f.driver.PutContent(context.Background(), storage.BlobData(d), data); err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) link(t *testing.T, p string, d digest.Digest) {
	t.Helper()
	if err := f.driver.PutContent(context.Background(), p, []byte(d)); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) run(t *testing.T) *Result {
	t.Helper()
	res, err := Run(context.Background(), f.driver, Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// TestClassification: each kind of damage is classified as documented and
// reported for the images that use the damaged blob.
func TestClassification(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		damage  func(t *testing.T, f *fixture)
		blob    func(f *fixture) digest.Digest
		problem string
		repos   []string
	}{
		{"ok", func(*testing.T, *fixture) {}, nil, "", nil},
		{"corrupt", func(t *testing.T, f *fixture) {
			bad := append([]byte{}, f.layerData...)
			bad[3] ^= 1
			must(t, f.driver.PutContent(ctx, storage.BlobData(f.layer), bad))
		}, layerOf, ProblemCorrupt, fixtureRepos},
		{"truncated", func(t *testing.T, f *fixture) {
			must(t, f.driver.PutContent(ctx, storage.BlobData(f.layer), f.layerData[:5]))
		}, layerOf, ProblemTruncated, fixtureRepos},
		{"longer is corrupt", func(t *testing.T, f *fixture) {
			must(t, f.driver.PutContent(ctx, storage.BlobData(f.layer), append(append([]byte{}, f.layerData...), 'x')))
		}, layerOf, ProblemCorrupt, fixtureRepos},
		{"blob gone", func(t *testing.T, f *fixture) {
			must(t, f.driver.Delete(ctx, storage.BlobDir(f.layer)))
		}, layerOf, ProblemDanglingLink, fixtureRepos},
		{"garbled link", func(t *testing.T, f *fixture) {
			must(t, f.driver.PutContent(ctx, layerLink("cvi/alpha", f.layer), []byte("not a digest")))
		}, layerOf, ProblemDanglingLink, []string{"cvi/alpha"}},
		{"link to another digest", func(t *testing.T, f *fixture) {
			must(t, f.driver.PutContent(ctx, layerLink("vi/default/beta", f.layer), []byte(f.config)))
		}, layerOf, ProblemDanglingLink, []string{"vi/default/beta"}},
		{"config link deleted", func(t *testing.T, f *fixture) {
			must(t, f.driver.Delete(ctx, layerLink("vi/default/beta", f.config)))
		}, func(f *fixture) digest.Digest { return f.config }, ProblemDanglingLink, []string{"vi/default/beta"}},
		{"manifest corrupt", func(t *testing.T, f *fixture) {
			must(t, f.driver.PutContent(ctx, storage.BlobData(f.manifest), []byte(`{"schemaVersion":2}`)))
		}, func(f *fixture) digest.Digest { return f.manifest }, ProblemCorrupt, fixtureRepos},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.damage(t, f)
			res := f.run(t)
			if len(res.Images) != len(fixtureRepos) {
				t.Fatalf("images %+v, want one per repository", res.Images)
			}
			checkImages(t, res, tt.blob, f, tt.problem, tt.repos)
		})
	}
}

func checkImages(t *testing.T, res *Result, blob func(*fixture) digest.Digest, f *fixture, problem string, repos []string) {
	t.Helper()
	want := map[string]bool{}
	for _, r := range repos {
		want[r] = true
	}
	for _, img := range res.Images {
		if !want[img.Repository] {
			if img.Status != StatusOK {
				t.Errorf("%s: %+v, want ok", img.Repository, img.Problems)
			}
			continue
		}
		if img.Status != StatusProblem || len(img.Problems) != 1 || img.Problems[0].Blob != blob(f) || img.Problems[0].Problem != problem {
			t.Errorf("%s: %+v, want one %s of %s", img.Repository, img.Problems, problem, blob(f))
		}
	}
	if wantResult := map[bool]string{true: ResultOK, false: ResultCorrupt}[len(repos) == 0]; res.Result != wantResult {
		t.Errorf("result %q, want %q", res.Result, wantResult)
	}
}

// TestNamesAndAction: images carry their resource's kind, namespace and
// name, and the command that removes their repository.
func TestNamesAndAction(t *testing.T) {
	f := newFixture(t)
	must(t, f.driver.Delete(context.Background(), storage.BlobData(f.layer)))
	res := f.run(t)
	beta := res.Images[1]
	if beta.Kind != "VirtualImage" || beta.Namespace != "default" || beta.Name != "beta" || beta.Tag != "latest" {
		t.Errorf("image %+v", beta)
	}
	if want := "dvcr-cleaner delete vi beta -n default"; !strings.Contains(beta.Action, want) {
		t.Errorf("action %q lacks %q", beta.Action, want)
	}
	if res.BlobsChecked != 2 || res.ProblemCount() != 1 {
		t.Errorf("blobs checked %d, problems %d; want 2 and 1", res.BlobsChecked, res.ProblemCount())
	}
}

// TestUnreferencedCorrupt: a corrupt blob nobody links makes the run fail
// without blaming an image.
func TestUnreferencedCorrupt(t *testing.T) {
	f := newFixture(t)
	must(t, f.driver.PutContent(context.Background(), storage.BlobData(digest.FromString("orphan")), []byte("other")))
	res := f.run(t)
	if res.Result != ResultCorrupt || len(res.Unreferenced) != 1 || res.ImagesWithProblems() != 0 {
		t.Errorf("result %+v", res)
	}
}

func layerOf(f *fixture) digest.Digest { return f.layer }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
