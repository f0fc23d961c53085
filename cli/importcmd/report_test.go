package importcmd

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/importer"
)

var result = &importer.Result{
	Repository: "cvi/ubuntu", Tag: "latest", Digest: "sha256:abc", Format: "qcow2", Compression: "xz",
	StoredBytes: 3 << 20, UnpackedBytes: 2 << 30, SourceBytes: 3<<20 - 2048, Seconds: 1.5,
}

func events(r *reporter) {
	r.Event(importer.Event{Phase: importer.PhaseTransfer, Bytes: 0, Total: 100})
	r.Event(importer.Event{Phase: importer.PhaseWaiting, Bytes: 40, Total: 100, Message: "registry is read-only (garbage collection); retry later: waiting 5s"})
	r.Event(importer.Event{Phase: importer.PhaseTransfer, Bytes: 100, Total: 100})
	r.Event(importer.Event{Phase: importer.PhaseCommit, Total: -1})
}

func TestReportJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	r := newReporter(Streams{Out: &out, Err: &errOut}, true, nil)
	events(r)
	r.Close()
	if err := r.result(result); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 4 events and the result:\n%s", len(lines), out.String())
	}
	var e importer.Event
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.Phase != "waiting" || !strings.Contains(e.Message, "read-only") {
		t.Errorf("waiting event %q: %v", lines[1], err)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[4]), &res); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"repository", "digest", "format", "cdrom", "storedBytes", "unpackedBytes", "sourceBytes", "seconds"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result has no %q: %s", k, lines[4])
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr with -o json: %q", errOut.String())
	}
}

func TestReportPlain(t *testing.T) {
	var out, errOut bytes.Buffer
	r := newReporter(Streams{Out: &out, Err: &errOut}, false, nil)
	events(r)
	r.Close()
	if err := r.result(result); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"transfer...", "waiting: registry is read-only", "transfer: 100.0B of 100.0B (100.0%)", "commit..."} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, errOut.String())
		}
	}
	for _, want := range []string{"Imported cvi/ubuntu:latest", "qcow2 (xz compressed)", "unpacked size  2.0GiB (2147483648 bytes)", "stored size    3.0MiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}
