package verifycmd

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/units"
	"github.com/dvcr/dvcr/verify"
)

type statusFlags struct {
	output common.Output
}

func newStatus(opts *common.Options, streams common.Streams) *cobra.Command {
	f := &statusFlags{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the results of the last verification runs",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runStatus(cmd.Context(), opts, f, streams) },
	}
	common.AddOutputFlag(cmd.Flags(), &f.output)
	return cmd
}

func runStatus(ctx context.Context, opts *common.Options, f *statusFlags, streams common.Streams) error {
	if err := f.output.Validate(); err != nil {
		return err
	}
	_, driver, err := opts.Storage(ctx)
	if err != nil {
		return err
	}
	results, err := verify.NewResultStore(driver).List(ctx)
	if err != nil {
		return err
	}
	if f.output.JSON() {
		return common.WriteJSON(streams.Out, results)
	}
	if len(results) == 0 {
		_, err := fmt.Fprintln(streams.Out, "No verification runs recorded yet.")
		return err
	}
	rows := make([][]string, 0, len(results))
	for _, r := range results {
		rows = append(rows, []string{
			r.StartedAt.Local().Format(time.DateTime), r.Trigger, r.Result,
			r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String(),
			strconv.Itoa(r.BlobsChecked), units.FormatBytes(uint64(max(r.BytesRead, 0))),
			strconv.Itoa(len(r.Images)), strconv.Itoa(r.ImagesWithProblems()), strconv.Itoa(r.ProblemCount()), r.Error,
		})
	}
	return common.WriteTable(streams.Out, []string{"STARTED", "TRIGGER", "RESULT", "DURATION", "BLOBS", "READ", "IMAGES", "WITH-PROBLEMS", "PROBLEMS", "ERROR"}, rows)
}
