package provisioning

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/importer/diskformat"
	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/importer/source"
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

// TestProgressStartsOver: the progress of an attempt never goes back, but a
// new attempt (the status showed another phase) or a new generation starts
// from its own.
func TestProgressStartsOver(t *testing.T) {
	for _, c := range []struct {
		name     string
		phase    v1alpha2.Phase
		observed int64
		want     string
	}{
		{"same attempt", v1alpha2.PhaseProvisioning, 3, "40.0%"},
		{"after Pending", v1alpha2.PhasePending, 3, "10.0%"},
		{"after Failed", v1alpha2.PhaseFailed, 3, "10.0%"},
		{"new generation", v1alpha2.PhaseProvisioning, 2, "10.0%"},
	} {
		t.Run(c.name, func(t *testing.T) {
			obj := &v1alpha2.ClusterVirtualImage{}
			obj.Generation = 3
			obj.Status.Phase, obj.Status.Progress, obj.Status.ObservedGeneration = c.phase, "40.0%", c.observed
			progressStatus(obj, 3, 10, &v1alpha2.DownloadSpeed{}, "")
			if obj.Status.Progress != c.want || obj.Status.Phase != v1alpha2.PhaseProvisioning || obj.Status.ObservedGeneration != 3 {
				t.Errorf("status %s %s gen %d, want Provisioning %s gen 3", obj.Status.Phase, obj.Status.Progress, obj.Status.ObservedGeneration, c.want)
			}
		})
	}
}

// TestFailureClassification: what a failed attempt says and which phase it
// leaves: Failed only when a person must act, Provisioning (reason
// ProvisioningRetrying, "retrying in ...") when the failure passes.
func TestFailureClassification(t *testing.T) {
	blobTaken := &registryclient.APIError{Method: "PUT", Path: "/v2/cvi/x/manifests/latest", Status: 400, Codes: []string{"MANIFEST_BLOB_UNKNOWN"}}
	full := &registryclient.APIError{Method: "PATCH", Path: "/v2/cvi/x/blobs/uploads/u", Status: 507, Detail: "DVCR storage is full: 0B free of 64.0MiB; run garbage collection or enlarge the volume"}
	cases := []struct {
		err       error
		permanent bool
		phase     v1alpha2.Phase
		says      string
	}{
		{fmt.Errorf("x: %w", diskformat.ErrBackingFile), true, v1alpha2.PhaseFailed, "Fix the source or the spec"},
		{fmt.Errorf("x: %w", importer.ErrChecksumMismatch), true, v1alpha2.PhaseFailed, "checksum"},
		{fmt.Errorf("x: %w", errBadSpec), true, v1alpha2.PhaseFailed, "Fix the source or the spec"},
		{fmt.Errorf("x: %w", source.ErrNotFound), false, v1alpha2.PhaseFailed, "Check that the source exists"},
		{fmt.Errorf("x: %w", source.ErrUnauthorized), false, v1alpha2.PhaseFailed, "imagePullSecret"},
		{fmt.Errorf("pushing: %w", full), false, v1alpha2.PhaseFailed, "run garbage collection or enlarge the volume"},
		{errors.New("connection refused"), false, v1alpha2.PhaseProvisioning, "retrying in 20s"},
		{fmt.Errorf("x: %w", source.ErrTransfer), false, v1alpha2.PhaseProvisioning, "retrying in 20s"},
		{fmt.Errorf("x: %w", registryclient.ErrUnavailable), false, v1alpha2.PhaseProvisioning, "retrying in 20s"},
		{fmt.Errorf("writing the manifest: %w", blobTaken), false, v1alpha2.PhaseProvisioning, "MANIFEST_BLOB_UNKNOWN"},
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
			obj := &v1alpha2.ClusterVirtualImage{}
			obj.Status.Progress = "66.5%"
			reason := attemptFailedStatus(obj, c.err, msg, 1)
			if obj.Status.Phase != c.phase {
				t.Errorf("phase %s, want %s", obj.Status.Phase, c.phase)
			}
			want := map[bool]string{true: v1alpha2.ReasonProvisioningFailed, false: v1alpha2.ReasonProvisioningRetrying}[c.phase == v1alpha2.PhaseFailed]
			if reason != want || obj.Status.Conditions[0].Reason != want || obj.Status.Conditions[0].Message != msg {
				t.Errorf("Ready condition %+v (returned %s), want reason %s", obj.Status.Conditions, reason, want)
			}
			if c.phase == v1alpha2.PhaseProvisioning && obj.Status.Progress != "0.0%" {
				t.Errorf("progress %s on a retry, want 0.0%% (the next attempt starts over)", obj.Status.Progress)
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
