package storage

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestListRepositoryFiles: a repository's own files, _manifests apart, and
// never those of a repository nested in its directory.
func TestListRepositoryFiles(t *testing.T) {
	d := fill(t, "cvi/a", "cvi/a/nested", "vi/legacy", "vi/legacy/img", "vi/ns/b")
	ctx := context.Background()
	cases := []struct {
		repo              string
		manifests, others []string
	}{
		{"cvi/a", []string{RepositoryDir("cvi/a") + "/_manifests/tags/latest/current/link"}, []string{RepositoryDir("cvi/a") + "/_layers/sha256/aa/link"}},
		{"vi/legacy", []string{RepositoryDir("vi/legacy") + "/_manifests/tags/latest/current/link"}, []string{RepositoryDir("vi/legacy") + "/_layers/sha256/aa/link"}},
		{"vi/legacy/img", []string{RepositoryDir("vi/legacy/img") + "/_manifests/tags/latest/current/link"}, []string{RepositoryDir("vi/legacy/img") + "/_layers/sha256/aa/link"}},
	}
	for _, tc := range cases {
		t.Run(tc.repo, func(t *testing.T) {
			files, err := ListRepositoryFiles(ctx, d, tc.repo)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(files.Manifests, tc.manifests) || !slices.Equal(files.Others, tc.others) {
				t.Errorf("manifests %v, others %v; want %v, %v", files.Manifests, files.Others, tc.manifests, tc.others)
			}
			if files.Modified.IsZero() {
				t.Error("no modification time")
			}
		})
	}
	t.Run("linked blobs", func(t *testing.T) {
		layer := digest.FromString("layer")
		manifest := digest.FromString("manifest")
		for _, f := range []string{
			"_layers/" + layer.Algorithm().String() + "/" + layer.Encoded() + "/link",
			"_manifests/revisions/" + manifest.Algorithm().String() + "/" + manifest.Encoded() + "/link",
			"_manifests/tags/v1/index/" + layer.Algorithm().String() + "/" + layer.Encoded() + "/link",
		} {
			if err := d.PutContent(ctx, RepositoryDir("vi/ns/b")+"/"+f, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		files, err := ListRepositoryFiles(ctx, d, "vi/ns/b")
		if err != nil {
			t.Fatal(err)
		}
		got := files.Linked()
		slices.Sort(got)
		want := []digest.Digest{layer, manifest}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("linked %v, want %v (the invalid sha256/aa and a tag's history left out)", got, want)
		}
	})
	for _, missing := range []string{"cvi/none", "vi/ns"} {
		if _, err := ListRepositoryFiles(ctx, d, missing); !errors.Is(err, ErrRepositoryNotFound) {
			t.Errorf("%s: %v, want ErrRepositoryNotFound", missing, err)
		}
	}
}
