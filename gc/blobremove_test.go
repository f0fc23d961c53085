package gc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// TestRemoveBlobOrder: a blob's layer links go before its data, so that a
// run stopped or failing in between leaves data nothing links to (the next
// run deletes it), never a link to missing data; a link that cannot be
// deleted keeps the data; a path already gone is no error, but data
// already gone was not deleted by this call.
func TestRemoveBlobOrder(t *testing.T) {
	d := digest.FromString("blob")
	links := []string{"/repos/cvi/a/_layers/sha256/x", "/repos/cvi/b/_layers/sha256/x"}
	data := storage.BlobDir(d)
	gone := storagedriver.PathNotFoundError{Path: "p"}
	for _, c := range []struct {
		name     string
		fail     map[string]error
		want     bool
		removed  []string
		errorsOn string
	}{
		{"all", nil, true, []string{links[0], links[1], data}, ""},
		{"a link fails", map[string]error{links[0]: errors.New("EIO")}, false, []string{links[1]}, links[0]},
		{"the data fails", map[string]error{data: errors.New("EIO")}, false, []string{links[0], links[1]}, string(d)},
		{"a link already gone", map[string]error{links[1]: gone}, true, []string{links[0], data}, ""},
		{"the data already gone", map[string]error{data: gone}, false, []string{links[0], links[1]}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSweeper(nil, SweepOptions{})
			var removed []string
			remove := func(_ context.Context, p string, _ int64) error {
				if err := c.fail[p]; err != nil {
					return err
				}
				removed = append(removed, p)
				return nil
			}
			got := s.removeBlob(context.Background(), remove, condemnedBlob{digest: d, size: 5, links: links})
			if got != c.want || !slices.Equal(removed, c.removed) {
				t.Errorf("removeBlob = %v, removed %v; want %v, %v", got, removed, c.want, c.removed)
			}
			errs := strings.Join(s.stats.Errors, "\n")
			if (c.errorsOn == "") != (errs == "") || !strings.Contains(errs, c.errorsOn) {
				t.Errorf("errors %q, want one naming %q", errs, c.errorsOn)
			}
		})
	}
}
