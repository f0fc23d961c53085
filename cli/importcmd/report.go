package importcmd

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/dvcr/dvcr/cli/internal/progressview"
	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/units"
)

// reporter renders the import's progress (progressview) and its result.
type reporter struct {
	*progressview.View
	out io.Writer
}

func newReporter(streams Streams, asJSON bool, records *slog.Logger) *reporter {
	return &reporter{View: progressview.New(streams.Out, streams.Err, asJSON, records, countsBytes), out: streams.Out}
}

// countsBytes tells the phases whose progress is a byte count worth a bar;
// the others are short steps before the summary.
func countsBytes(phase string) bool {
	return phase == importer.PhaseTransfer || phase == importer.PhaseDownload
}

// result prints the final JSON object or the summary.
func (r *reporter) result(res *importer.Result) error {
	if r.JSON() {
		return r.Encode(res)
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
	_, err := io.WriteString(r.out, b.String())
	return err
}
