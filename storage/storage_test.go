package storage

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

// fill writes a _manifests tag link and a layer link for each repository.
func fill(t *testing.T, repos ...string) *inmemory.Driver {
	t.Helper()
	d := inmemory.New()
	ctx := context.Background()
	for _, r := range repos {
		for _, f := range []string{"_manifests/tags/latest/current/link", "_layers/sha256/aa/link"} {
			if err := d.PutContent(ctx, RepositoryDir(r)+"/"+f, []byte("sha256:aa")); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d
}

func TestListRepositories(t *testing.T) {
	d := fill(t, "cvi/a", "vi/legacy", "vi/legacy/img", "vi/ns/b", "vd/ns/c", "foo/bar", "cvi/a/nested")
	inv, err := ListRepositories(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	var managed []string
	for _, r := range inv.Repos {
		managed = append(managed, r.Path+"="+r.Repository.Path())
	}
	if got, want := strings.Join(managed, " "), "cvi/a=cvi/a vd/ns/c=vd/ns/c vi/legacy=cvi/legacy vi/legacy/img=vi/legacy/img vi/ns/b=vi/ns/b"; got != want {
		t.Errorf("managed: %s\nwant:    %s", got, want)
	}
	if got := strings.Join(inv.Unmanaged, " "); got != "cvi/a/nested foo/bar" {
		t.Errorf("unmanaged: %s", got)
	}
	empty, err := ListRepositories(context.Background(), inmemory.New())
	if err != nil || len(empty.Repos) != 0 {
		t.Errorf("empty storage: %v %+v", err, empty)
	}
}

// TestRemoveRepositoryKeepsNested: removing the legacy vi/<name> repository
// (or any repository with nested ones) never takes the nested ones along.
func TestRemoveRepositoryKeepsNested(t *testing.T) {
	cases := []struct {
		name, remove string
		left         string
	}{
		{"legacy cvi shares its dir with a namespace", "vi/legacy", "vi/legacy/img"},
		{"repository with a nested one", "cvi/a", "cvi/a/nested"},
		{"plain repository", "vi/ns/b", "cvi/a cvi/a/nested vi/legacy vi/legacy/img"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := fill(t, "cvi/a", "cvi/a/nested", "vi/legacy", "vi/legacy/img", "vi/ns/b")
			ctx := context.Background()
			if err := RemoveRepository(ctx, d, tc.remove); err != nil {
				t.Fatal(err)
			}
			inv, err := ListRepositories(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, r := range inv.Repos {
				if r.Path != tc.remove {
					left = append(left, r.Path)
				} else {
					t.Fatalf("%s still listed", tc.remove)
				}
			}
			left = append(left, inv.Unmanaged...)
			for _, want := range strings.Fields(tc.left) {
				if !strings.Contains(" "+strings.Join(left, " ")+" ", " "+want+" ") {
					t.Errorf("%s was removed along with %s (left: %v)", want, tc.remove, left)
				}
			}
			if err := RemoveRepository(ctx, d, tc.remove); !errors.Is(err, ErrRepositoryNotFound) {
				t.Errorf("second removal: %v, want ErrRepositoryNotFound", err)
			}
		})
	}
}
