package importer

import (
	"errors"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/naming"
)

func TestParseRepository(t *testing.T) {
	long := strings.Repeat("a", 250)
	cases := []struct {
		arg, path, tag string
		err            bool
	}{
		{"cvi/ubuntu", "cvi/ubuntu", "", false},
		{"vi/default/ubuntu:v2", "vi/default/ubuntu", "v2", false},
		{"vd/prod/root-disk", "vd/prod/root-disk", "", false},
		{"vi/ns/" + long, naming.RepositoryFor("dvcr.example", naming.KindVI, "ns", long).Path(), "", false},
		{"foo/bar", "", "", true},
		{"cvi/a/b", "", "", true},
		{"vi/only-name", "", "", true},
		{"vi/ns/Bad_Name", "", "", true},
	}
	for _, c := range cases {
		t.Run(c.arg[:min(len(c.arg), 30)], func(t *testing.T) {
			repo, tag, err := ParseRepository(c.arg, "dvcr.example")
			if c.err {
				if !errors.Is(err, ErrBadRepository) {
					t.Fatalf("err %v, want ErrBadRepository", err)
				}
				return
			}
			if err != nil || repo.Path() != c.path || tag != c.tag {
				t.Fatalf("got %q %q %v, want %q %q", repo.Path(), tag, err, c.path, c.tag)
			}
		})
	}
}
