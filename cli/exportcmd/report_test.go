package exportcmd

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/exporter"
)

var result = &exporter.Result{
	Repository: "cvi/ubuntu", Tag: "latest", Digest: "sha256:abc", File: "noble.qcow2", Format: "qcow2",
	Compression: "xz", Decompressed: true, Bytes: 3 << 20, SHA256: "0123", ContinuedFrom: 1 << 20, Seconds: 1.5,
}

func events(r *reporter) {
	r.Event(exporter.Event{Phase: exporter.PhaseTransfer, Bytes: 0, Total: 100})
	r.Event(exporter.Event{Phase: exporter.PhaseRetry, Bytes: 40, Total: 100, Message: "connection lost at byte 40 of 100 of the layer: resuming"})
	r.Event(exporter.Event{Phase: exporter.PhaseTransfer, Bytes: 100, Total: 100})
}

func TestReportJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	r := newReporter(Streams{Out: &out, Err: &errOut}, true, false, nil)
	events(r)
	r.Close()
	if err := r.result(result); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 3 events and the result:\n%s", len(lines), out.String())
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[3]), &res); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"file", "bytes", "sha256", "format", "seconds", "digest", "continuedFrom", "decompressed"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result has no %q: %s", k, lines[3])
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr with -o json: %q", errOut.String())
	}
}

func TestReportPlainAndStdout(t *testing.T) {
	var out, errOut bytes.Buffer
	r := newReporter(Streams{Out: &out, Err: &errOut}, false, true, nil)
	events(r)
	r.Close()
	if err := r.result(result); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("with FILE - stdout holds only the disk, not %q", out.String())
	}
	for _, want := range []string{"transfer...", "retry: connection lost at byte 40", "transfer: 100.0B of 100.0B (100.0%)",
		"Exported cvi/ubuntu:latest to noble.qcow2: qcow2 (decompressed from xz), 3.0MiB (3145728 bytes) in 1.5s, continued from byte 1048576, sha256 0123"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
}
