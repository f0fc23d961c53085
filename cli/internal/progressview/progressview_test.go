package progressview

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/progress"
)

// TestBar: at a terminal a byte-count phase gets a bar, a note clears it
// and is shown on a line of its own, a phase outside bars gets none.
func TestBar(t *testing.T) {
	var out, log bytes.Buffer
	v := New(&out, &log, false, func(phase string) bool { return phase == "transfer" })
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
