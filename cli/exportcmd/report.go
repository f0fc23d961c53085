package exportcmd

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/dvcr/dvcr/cli/internal/progressview"
	"github.com/dvcr/dvcr/exporter"
	"github.com/dvcr/dvcr/units"
)

// reporter renders the export's progress (progressview) and its result.
// Everything but the JSON goes to stderr, so that FILE - keeps stdout for
// the disk.
type reporter struct {
	*progressview.View
	summary io.Writer
}

func newReporter(streams Streams, asJSON, toStdout bool, records *slog.Logger) *reporter {
	r := &reporter{View: progressview.New(streams.Out, streams.Err, asJSON, records, nil), summary: streams.Out}
	if toStdout {
		r.summary = streams.Err
	}
	return r
}

// result prints the final JSON object or a summary line.
func (r *reporter) result(res *exporter.Result) error {
	if r.JSON() {
		return r.Encode(res)
	}
	format := res.Format
	if res.Decompressed {
		format += " (decompressed from " + res.Compression + ")"
	}
	cont := ""
	if res.ContinuedFrom > 0 {
		cont = fmt.Sprintf(", continued from byte %d", res.ContinuedFrom)
	}
	_, err := fmt.Fprintf(r.summary, "Exported %s:%s to %s: %s, %s (%d bytes) in %.1fs%s, sha256 %s\n",
		res.Repository, res.Tag, res.File, format, units.FormatBytes(uint64(res.Bytes)), res.Bytes, res.Seconds, cont, res.SHA256)
	return err
}
