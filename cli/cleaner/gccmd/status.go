package gccmd

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/admin"
	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/units"
)

type statusFlags struct {
	output common.Output
}

func newStatus(opts *common.Options, streams common.Streams) *cobra.Command {
	f := &statusFlags{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the results of the last garbage collection runs",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runStatus(cmd.Context(), opts, f, streams) },
	}
	common.AddOutputFlag(cmd.Flags(), &f.output)
	return cmd
}

// runStatus reads the records from storage, where every run (through the
// server or offline) writes them.
func runStatus(ctx context.Context, opts *common.Options, f *statusFlags, streams common.Streams) error {
	if err := f.output.Validate(); err != nil {
		return err
	}
	cfg, driver, err := opts.Storage(ctx)
	if err != nil {
		return err
	}
	results, err := gc.NewResultStore(driver).List(ctx)
	if err != nil {
		return err
	}
	if f.output.JSON() {
		return common.WriteJSON(streams.Out, results)
	}
	writeServerState(ctx, streams, cfg.DVCR.AdminSocket)
	if len(results) == 0 {
		_, err := fmt.Fprintln(streams.Out, "No garbage collection runs recorded yet.")
		return err
	}
	rows := make([][]string, 0, len(results))
	for _, r := range results {
		rows = append(rows, []string{
			r.StartedAt.Local().Format(time.DateTime), r.Trigger, r.Result,
			r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String(),
			fmt.Sprintf("%.1fs", r.ReadOnlySeconds), strconv.Itoa(len(r.Deleted)),
			units.FormatBytes(uint64(max(r.Freed, 0))), summary(r),
		})
	}
	return common.WriteTable(streams.Out, []string{"STARTED", "TRIGGER", "RESULT", "DURATION", "READ-ONLY", "DELETED", "FREED", "MESSAGE"}, rows)
}

func summary(r gc.Result) string {
	if r.Error != "" {
		return r.Error
	}
	return r.Message
}

// writeServerState says whether a run is in progress right now, when a
// dvcr serve answers on the admin socket.
func writeServerState(ctx context.Context, streams common.Streams, socket string) {
	client, err := admin.Dial(ctx, socket)
	if err != nil {
		return
	}
	st, err := client.Status(ctx)
	switch {
	case err != nil:
	case st.GCRunning:
		fmt.Fprintln(streams.Out, "A garbage collection run is in progress: the registry is read-only.")
	case st.ReadOnly:
		fmt.Fprintln(streams.Out, "The registry is read-only (storage.maintenance.readonly).")
	}
}
