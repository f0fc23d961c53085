// Package progressview renders the progress events of the transfer
// commands (`dvcr import`, `dvcr export`) the same way: a bar at a
// terminal, NDJSON on standard output with -o json, otherwise a line per
// phase and one every few seconds, or with --log-format json a log record
// in their place.
package progressview

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/dvcr/dvcr/progress"
	"github.com/dvcr/dvcr/units"
)

// plainInterval spaces progress lines when stderr is not a terminal.
const plainInterval = 5 * time.Second

// View renders events. Everything but the JSON goes to the log stream
// (stderr), so that a disk written to stdout keeps it to itself.
type View struct {
	mu        sync.Mutex
	json      *json.Encoder
	log       io.Writer
	records   *slog.Logger // with --log-format json: records instead of lines and bars
	tty       bool
	bars      func(phase string) bool
	bar       *progressbar.ProgressBar
	phase     string
	lastPlain time.Time
}

// New returns a view writing JSON to out when asJSON, otherwise to log,
// as records of logs when it is not nil (--log-format json). bars tells the
// phases whose progress is a byte count worth a bar (nil: all of them); the
// others are short steps shown by name only.
func New(out, log io.Writer, asJSON bool, records *slog.Logger, bars func(phase string) bool) *View {
	v := &View{log: log, records: records, tty: isTerminal(log) && records == nil, bars: bars}
	if asJSON {
		v.json = json.NewEncoder(out)
	}
	return v
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Event renders one event; it is the Progress option of the libraries.
func (v *View) Event(e progress.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.json != nil:
		_ = v.json.Encode(e)
	case e.IsNote() && v.records != nil:
		v.records.Info(e.Message, "phase", e.Phase)
	case e.IsNote():
		if v.bar != nil {
			_ = v.bar.Clear()
		}
		fmt.Fprintf(v.log, "%s: %s\n", e.Phase, e.Message)
	case v.tty:
		v.barEvent(e)
	default:
		v.plainEvent(e)
	}
}

// JSON tells whether the view writes JSON; the result then goes through
// Encode.
func (v *View) JSON() bool { return v.json != nil }

// Encode writes the final JSON object.
func (v *View) Encode(res any) error { return v.json.Encode(res) }

// Close finishes a bar in progress.
func (v *View) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.finishBar()
}

func (v *View) barEvent(e progress.Event) {
	if e.Phase != v.phase || v.bar == nil {
		v.finishBar()
		v.phase = e.Phase
		if v.bars != nil && !v.bars(e.Phase) {
			return
		}
		v.bar = NewBar(v.log, e.Phase, e.Total)
	}
	_ = v.bar.Set64(e.Bytes)
}

// NewBar is the byte-count bar of the commands: phase, bytes of total
// (-1: unknown), rate and time left, cleared when finished.
func NewBar(w io.Writer, phase string, total int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-8s", phase)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
	)
}

func (v *View) finishBar() {
	if v.bar != nil {
		_ = v.bar.Finish()
		v.bar = nil
	}
}

func (v *View) plainEvent(e progress.Event) {
	switch {
	case e.Phase != v.phase:
		v.phase, v.lastPlain = e.Phase, time.Now()
		v.plainLine(e, true)
	case time.Since(v.lastPlain) >= plainInterval || (e.Total > 0 && e.Bytes == e.Total):
		v.lastPlain = time.Now()
		v.plainLine(e, false)
	}
}

// plainLine says that a phase starts or how far it is.
func (v *View) plainLine(e progress.Event, starts bool) {
	switch {
	case v.records != nil:
		v.records.Info("progress", "phase", e.Phase, "bytes", e.Bytes, "total", e.Total)
	case starts:
		fmt.Fprintf(v.log, "%s...\n", e.Phase)
	default:
		fmt.Fprintf(v.log, "%s: %s\n", e.Phase, Amount(e.Bytes, e.Total))
	}
}

// Amount is n of total bytes for a person; total -1 is unknown.
func Amount(n, total int64) string {
	if total < 0 {
		return units.FormatBytes(uint64(max(n, 0)))
	}
	pct := 100.0
	if total > 0 {
		pct = float64(n) * 100 / float64(total)
	}
	return fmt.Sprintf("%s of %s (%.1f%%)", units.FormatBytes(uint64(max(n, 0))), units.FormatBytes(uint64(total)), pct)
}
