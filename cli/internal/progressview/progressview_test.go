package progressview

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/logging"
	"github.com/dvcr/dvcr/progress"
)

// TestBar: at a terminal a byte-count phase gets a bar, a note clears it
// and is shown on a line of its own, a phase outside bars gets none.
func TestBar(t *testing.T) {
	var out, log bytes.Buffer
	v := New(&out, &log, false, nil, func(phase string) bool { return phase == "transfer" })
	v.tty = true
	v.Event(progress.Event{Phase: "transfer", Bytes: 0, Total: 100})
	v.Event(progress.Event{Phase: "retry", Bytes: 40, Total: 100, Message: "connection lost at byte 40 of 100 of the layer: resuming"})
	v.Event(progress.Event{Phase: "transfer", Bytes: 100, Total: 100})
	v.Event(progress.Event{Phase: "commit", Total: -1})
	v.Close()
	if !strings.Contains(log.String(), "transfer") || !strings.Contains(log.String(), "/100 B)") {
		t.Errorf("bar output %q", log.String())
	}
	if !strings.Contains(log.String(), "retry: connection lost") {
		t.Errorf("the retry note is not shown: %q", log.String())
	}
	if strings.Contains(log.String(), "commit") || out.Len() != 0 {
		t.Errorf("commit has a bar or stdout was written: %q %q", log.String(), out.String())
	}
}

// TestRecords: with --log-format json, progress and notes are JSON records
// with the phase, bytes and total; no bar, no text line, nothing on stdout.
func TestRecords(t *testing.T) {
	var out, log bytes.Buffer
	v := New(&out, &log, false, logging.New(&log, logging.JSON, "", nil).With("component", "import"), nil)
	v.Event(progress.Event{Phase: "transfer", Bytes: 0, Total: 100})
	v.Event(progress.Event{Phase: "retry", Bytes: 40, Total: 100, Message: "connection lost at byte 40: resuming"})
	v.Event(progress.Event{Phase: "transfer", Bytes: 100, Total: 100})
	v.Close()
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	want := []map[string]any{
		{"msg": "progress", "phase": "transfer", "bytes": 0.0, "total": 100.0, "component": "import"},
		{"msg": "connection lost at byte 40: resuming", "phase": "retry"},
		{"msg": "progress", "phase": "transfer", "bytes": 100.0},
	}
	if len(lines) != len(want) || out.Len() != 0 {
		t.Fatalf("records %q, stdout %q", log.String(), out.String())
	}
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		for k, v := range want[i] {
			if rec[k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, rec[k], v)
			}
		}
	}
}

func TestAmount(t *testing.T) {
	for _, c := range []struct {
		n, total int64
		want     string
	}{
		{5 << 20, -1, "5.0MiB"},
		{50, 100, "50.0B of 100.0B (50.0%)"},
		{0, 0, "0.0B of 0.0B (100.0%)"},
	} {
		t.Run(c.want, func(t *testing.T) {
			if got := Amount(c.n, c.total); got != c.want {
				t.Errorf("Amount(%d, %d) = %q", c.n, c.total, got)
			}
		})
	}
}
