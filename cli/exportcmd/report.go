package exportcmd

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/dvcr/dvcr/exporter"
	"github.com/dvcr/dvcr/units"
)

// plainInterval spaces progress lines when stderr is not a terminal.
const plainInterval = 5 * time.Second

// reporter renders progress: a bar at a terminal, NDJSON with -o json,
// otherwise a line per phase and every few seconds. Everything but the
// JSON goes to stderr, so that FILE - keeps stdout for the disk.
type reporter struct {
	mu        sync.Mutex
	streams   Streams
	json      *json.Encoder
	tty       bool
	toStdout  bool
	bar       *progressbar.ProgressBar
	phase     string
	lastPlain time.Time
}

func newReporter(streams Streams, asJSON, toStdout bool) *reporter {
	r := &reporter{streams: streams, tty: isTerminal(streams.Err), toStdout: toStdout}
	if asJSON {
		r.json = json.NewEncoder(streams.Out)
	}
	return r
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// event is exporter.Options.Progress.
func (r *reporter) event(e exporter.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.json != nil:
		_ = r.json.Encode(e)
	case e.Message != "":
		if r.bar != nil {
			_ = r.bar.Clear()
		}
		fmt.Fprintf(r.streams.Err, "%s: %s\n", e.Phase, e.Message)
	case r.tty:
		r.barEvent(e)
	default:
		r.plainEvent(e)
	}
}

func (r *reporter) barEvent(e exporter.Event) {
	if e.Phase != r.phase || r.bar == nil {
		r.finishBar()
		r.phase = e.Phase
		r.bar = progressbar.NewOptions64(e.Total,
			progressbar.OptionSetWriter(r.streams.Err),
			progressbar.OptionSetDescription(fmt.Sprintf("%-8s", e.Phase)),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
		)
	}
	_ = r.bar.Set64(e.Bytes)
}

func (r *reporter) finishBar() {
	if r.bar != nil {
		_ = r.bar.Finish()
		r.bar = nil
	}
}

func (r *reporter) plainEvent(e exporter.Event) {
	switch {
	case e.Phase != r.phase:
		r.phase, r.lastPlain = e.Phase, time.Now()
		fmt.Fprintf(r.streams.Err, "%s...\n", e.Phase)
	case time.Since(r.lastPlain) >= plainInterval || (e.Total > 0 && e.Bytes == e.Total):
		r.lastPlain = time.Now()
		fmt.Fprintf(r.streams.Err, "%s: %s\n", e.Phase, amount(e.Bytes, e.Total))
	}
}

func amount(n, total int64) string {
	pct := 100.0
	if total > 0 {
		pct = float64(n) * 100 / float64(total)
	}
	return fmt.Sprintf("%s of %s (%.1f%%)", units.FormatBytes(uint64(max(n, 0))), units.FormatBytes(uint64(max(total, 0))), pct)
}

func (r *reporter) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finishBar()
}

// result prints the final JSON object or a summary line (on stderr when
// the disk went to stdout).
func (r *reporter) result(res *exporter.Result) error {
	if r.json != nil {
		return r.json.Encode(res)
	}
	w := r.streams.Out
	if r.toStdout {
		w = r.streams.Err
	}
	format := res.Format
	if res.Decompressed {
		format += " (decompressed from " + res.Compression + ")"
	}
	cont := ""
	if res.ContinuedFrom > 0 {
		cont = fmt.Sprintf(", continued from byte %d", res.ContinuedFrom)
	}
	_, err := fmt.Fprintf(w, "Exported %s:%s to %s: %s, %s (%d bytes) in %.1fs%s, sha256 %s\n",
		res.Repository, res.Tag, res.File, format, units.FormatBytes(uint64(res.Bytes)), res.Bytes, res.Seconds, cont, res.SHA256)
	return err
}
