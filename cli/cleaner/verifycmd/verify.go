// Package verifycmd implements `dvcr-cleaner verify`: re-read every blob
// against its digest and every repository's links and manifests, report
// per image, record the result; and `verify status`, the last results.
// Nothing is repaired or deleted.
package verifycmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/cli/internal/progressview"
	"github.com/dvcr/dvcr/logging"
	"github.com/dvcr/dvcr/units"
	"github.com/dvcr/dvcr/verify"
)

// ErrProblems: the verification found something wrong (exit code 1).
var ErrProblems = errors.New("storage verification found problems")

type flags struct {
	rate   string
	output common.Output
}

// NewCommand returns the `verify` command and its `status` subcommand.
func NewCommand(opts *common.Options, streams common.Streams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "verify [--rate BYTES/s] [-o json]",
		Short: "Check every blob against its digest and every image's links and manifests; repairs nothing",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), opts, f, streams) },
	}
	cmd.Flags().StringVar(&f.rate, "rate", "", "limit the read throughput, e.g. 200MiB/s, 200MiB or plain bytes per second (default unlimited)")
	common.AddOutputFlag(cmd.Flags(), &f.output)
	cmd.AddCommand(newStatus(opts, streams))
	return cmd
}

func run(ctx context.Context, opts *common.Options, f *flags, streams common.Streams) error {
	if err := f.output.Validate(); err != nil {
		return err
	}
	rate, err := verify.ParseRate(f.rate)
	if err != nil {
		return fmt.Errorf("--rate: %w", err)
	}
	_, driver, err := opts.Storage(ctx)
	if err != nil {
		return err
	}
	bar := newBar(streams.Err, opts.LogFormat)
	res, runErr := verify.Run(ctx, driver, verify.Options{Rate: rate, Progress: bar.progressFn()})
	bar.finish()
	if err := verify.NewResultStore(driver).Add(ctx, *res); err != nil {
		opts.Logger().Warn("recording the result", "err", err)
	}
	if runErr != nil {
		return fmt.Errorf("verifying storage: %w", runErr)
	}
	if f.output.JSON() {
		err = common.WriteJSON(streams.Out, res)
	} else {
		err = writeReport(streams.Out, res)
	}
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("%w: %s", ErrProblems, summaryLine(res))
	}
	return nil
}

// bar shows the bytes read on stderr when it is a terminal and the log is
// text.
type bar struct{ pb *progressbar.ProgressBar }

func newBar(w io.Writer, format logging.Format) *bar {
	r, ok := w.(io.Reader)
	if !ok || !common.IsTerminal(r) || format != logging.Text {
		return nil
	}
	return &bar{pb: progressview.NewBar(w, "verify", 0)}
}

func (b *bar) set(done, total int64) {
	if b == nil {
		return
	}
	if b.pb.GetMax64() != total {
		b.pb.ChangeMax64(total)
	}
	_ = b.pb.Set64(done)
}

// progress is what verify.Options.Progress takes; nil without a bar.
func (b *bar) progressFn() func(done, total int64) {
	if b == nil {
		return nil
	}
	return b.set
}

func (b *bar) finish() {
	if b != nil {
		_ = b.pb.Finish()
	}
}

// summaryLine is the one-line outcome of a run.
func summaryLine(r *verify.Result) string {
	return fmt.Sprintf("%d blobs checked (%s read) in %s; %d images, %d with problems, %d blob problems",
		r.BlobsChecked, units.FormatBytes(uint64(max(r.BytesRead, 0))),
		r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond), len(r.Images), r.ImagesWithProblems(), r.ProblemCount())
}
