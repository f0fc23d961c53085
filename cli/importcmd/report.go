package importcmd

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/units"
)

// plainInterval spaces progress lines when the output is not a terminal.
const plainInterval = 5 * time.Second

// reporter renders progress events: a bar at a terminal, NDJSON with -o
// json, otherwise a line per phase and every few seconds.
type reporter struct {
	mu        sync.Mutex
	streams   Streams
	json      *json.Encoder
	tty       bool
	bar       *progressbar.ProgressBar
	phase     string
	lastPlain time.Time
}

func newReporter(streams Streams, asJSON bool) *reporter {
	r := &reporter{streams: streams, tty: isTerminal(streams.Err)}
	if asJSON {
		r.json = json.NewEncoder(streams.Out)
	}
	return r
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// event is importer.Options.Progress.
func (r *reporter) event(e importer.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.json != nil:
		_ = r.json.Encode(e)
	case r.tty:
		r.barEvent(e)
	default:
		r.plainEvent(e)
	}
}

// isNote tells a message that interrupts a phase from the phase itself.
func isNote(e importer.Event) bool {
	return e.Phase == importer.PhaseWaiting || e.Phase == importer.PhaseRetry
}

func (r *reporter) barEvent(e importer.Event) {
	if isNote(e) {
		if r.bar != nil {
			_ = r.bar.Clear()
		}
		fmt.Fprintf(r.streams.Err, "%s: %s\n", e.Phase, e.Message)
		return
	}
	if e.Phase != r.phase || r.bar == nil {
		r.finishBar()
		r.phase = e.Phase
		if !countsBytes(e.Phase) {
			return // short steps before the summary: no bar
		}
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

// countsBytes tells the phases whose progress is a byte count.
func countsBytes(phase string) bool {
	return phase == importer.PhaseTransfer || phase == importer.PhaseDownload
}

func (r *reporter) finishBar() {
	if r.bar != nil {
		_ = r.bar.Finish()
		r.bar = nil
	}
}

func (r *reporter) plainEvent(e importer.Event) {
	switch {
	case isNote(e):
		fmt.Fprintf(r.streams.Err, "%s: %s\n", e.Phase, e.Message)
	case e.Phase != r.phase:
		r.phase, r.lastPlain = e.Phase, time.Now()
		fmt.Fprintf(r.streams.Err, "%s...\n", e.Phase)
	case time.Since(r.lastPlain) >= plainInterval || (e.Total > 0 && e.Bytes == e.Total):
		r.lastPlain = time.Now()
		fmt.Fprintf(r.streams.Err, "%s: %s\n", e.Phase, amount(e.Bytes, e.Total))
	}
}

func amount(n, total int64) string {
	if total < 0 {
		return units.FormatBytes(uint64(max(n, 0)))
	}
	pct := 100.0
	if total > 0 {
		pct = float64(n) * 100 / float64(total)
	}
	return fmt.Sprintf("%s of %s (%.1f%%)", units.FormatBytes(uint64(max(n, 0))), units.FormatBytes(uint64(total)), pct)
}

func (r *reporter) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finishBar()
}

// result prints the final JSON object or the summary.
func (r *reporter) result(res *importer.Result) error {
	if r.json != nil {
		return r.json.Encode(res)
	}
	format := res.Format
	if res.Compression != "" {
		format += " (" + res.Compression + " compressed)"
	}
	rate := ""
	if res.Seconds > 0 {
		rate = fmt.Sprintf(" (%s/s)", units.FormatBytes(uint64(float64(res.SourceBytes)/res.Seconds)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Imported %s:%s\n", res.Repository, res.Tag)
	fmt.Fprintf(&b, "  digest         %s\n", res.Digest)
	fmt.Fprintf(&b, "  format         %s\n", format)
	fmt.Fprintf(&b, "  cdrom          %t\n", res.CDROM)
	fmt.Fprintf(&b, "  stored size    %s (%d bytes)\n", units.FormatBytes(uint64(res.StoredBytes)), res.StoredBytes)
	fmt.Fprintf(&b, "  unpacked size  %s (%d bytes)\n", units.FormatBytes(uint64(res.UnpackedBytes)), res.UnpackedBytes)
	fmt.Fprintf(&b, "  source size    %s (%d bytes)\n", units.FormatBytes(uint64(res.SourceBytes)), res.SourceBytes)
	fmt.Fprintf(&b, "  time           %.1fs%s\n", res.Seconds, rate)
	_, err := io.WriteString(r.streams.Out, b.String())
	return err
}
