package provisioning

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/importer/diskformat"
	"github.com/dvcr/dvcr/importer/source"
	"github.com/dvcr/dvcr/provisioning/v1alpha2"
)

func TestProgressFormat(t *testing.T) {
	cases := []struct {
		pct  float64
		want string
	}{{0, "0.0%"}, {66.54, "66.5%"}, {100, "100.0%"}, {120, "100.0%"}, {-1, "0.0%"}}
	for _, c := range cases {
		if got := formatProgress(c.pct); got != c.want {
			t.Errorf("formatProgress(%v) = %q, want %q", c.pct, got, c.want)
		}
		if back := progressValue(formatProgress(c.pct)); formatProgress(back) != c.want {
			t.Errorf("progressValue(%q) = %v", c.want, back)
		}
	}
	for _, s := range []string{"", "100%x", "abc%"} {
		if v := progressValue(s); v != 0 {
			t.Errorf("progressValue(%q) = %v, want 0", s, v)
		}
	}
}

func TestFailureClassification(t *testing.T) {
	cases := []struct {
		err       error
		permanent bool
		says      string
	}{
		{fmt.Errorf("x: %w", diskformat.ErrBackingFile), true, "Fix the source or the spec"},
		{fmt.Errorf("x: %w", importer.ErrChecksumMismatch), true, "checksum"},
		{fmt.Errorf("x: %w", errBadSpec), true, "Fix the source or the spec"},
		{fmt.Errorf("x: %w", source.ErrNotFound), false, "Check that the source exists"},
		{fmt.Errorf("x: %w", source.ErrUnauthorized), false, "imagePullSecret"},
		{errors.New("connection refused"), false, "retrying in 20s"},
	}
	for _, c := range cases {
		t.Run(c.err.Error(), func(t *testing.T) {
			if got := permanent(c.err); got != c.permanent {
				t.Errorf("permanent = %t", got)
			}
			wait := 20 * time.Second
			if c.permanent {
				wait = 0
			}
			msg := failureMessage(c.err, wait)
			if !strings.Contains(msg, c.says) || (c.permanent && strings.Contains(msg, "retrying")) {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestHandledHere(t *testing.T) {
	img := func(storage string, ds v1alpha2.DataSource) v1alpha2.Image {
		return &v1alpha2.VirtualImage{Spec: v1alpha2.ImageSpec{Storage: storage, DataSource: ds}}
	}
	cases := []struct {
		name string
		obj  v1alpha2.Image
		want bool
	}{
		{"http in DVCR", img("", v1alpha2.DataSource{Type: v1alpha2.DataSourceHTTP}), true},
		{"on a PVC", img(v1alpha2.StoragePersistentVolumeClaim, v1alpha2.DataSource{Type: v1alpha2.DataSourceHTTP}), false},
		{"from a disk", img("", v1alpha2.DataSource{Type: v1alpha2.DataSourceObjectRef, ObjectRef: &v1alpha2.ObjectRef{Kind: "VirtualDisk"}}), false},
		{"from a snapshot", img("", v1alpha2.DataSource{Type: v1alpha2.DataSourceObjectRef, ObjectRef: &v1alpha2.ObjectRef{Kind: "VirtualDiskSnapshot"}}), false},
		{"from an image", img("", v1alpha2.DataSource{Type: v1alpha2.DataSourceObjectRef, ObjectRef: &v1alpha2.ObjectRef{Kind: "VirtualImage"}}), true},
	}
	for _, c := range cases {
		if got := handledHere(c.obj); got != c.want {
			t.Errorf("%s: handledHere = %t", c.name, got)
		}
	}
}

func TestTracker(t *testing.T) {
	tr := &tracker{}
	tr.event(importer.Event{Phase: importer.PhaseTransfer, Bytes: 10, Total: 100})
	tr.event(importer.Event{Phase: importer.PhaseWaiting, Bytes: 10, Total: 100, Message: "read-only"})
	if _, _, p := tr.snapshot(); p != "read-only" {
		t.Fatalf("postponed %q", p)
	}
	tr.event(importer.Event{Phase: importer.PhaseTransfer, Bytes: 50, Total: 100})
	if b, total, p := tr.snapshot(); b != 50 || total != 100 || p != "" {
		t.Fatalf("after the wait: %d/%d %q", b, total, p)
	}
}
