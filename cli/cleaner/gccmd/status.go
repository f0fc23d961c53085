package gccmd

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/admin"
	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/units"
)

func newStatus(opts *common.Options, streams common.Streams) *cobra.Command {
	return common.StatusCommand[gc.Result]{
		Short: "Show the results of the last garbage collection runs",
		Empty: "No garbage collection runs recorded yet.",
		List: func(ctx context.Context, d storagedriver.StorageDriver) ([]gc.Result, error) {
			return gc.NewResultStore(d).List(ctx)
		},
		Header:   []string{"STARTED", "TRIGGER", "RESULT", "DURATION", "READ-ONLY", "DELETED", "FREED", "MESSAGE"},
		Row:      statusRow,
		Preamble: writeServerState,
	}.Command(opts, streams)
}

func statusRow(r gc.Result) []string {
	return []string{
		r.StartedAt.Local().Format(time.DateTime), r.Trigger, r.Result,
		r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String(),
		fmt.Sprintf("%.1fs", r.ReadOnlySeconds), strconv.Itoa(len(r.Deleted)),
		units.FormatBytes(uint64(max(r.Freed, 0))), summary(r),
	}
}

func summary(r gc.Result) string {
	if r.Error != "" {
		return r.Error
	}
	return r.Message
}

// writeServerState says whether a run is in progress right now, when a
// dvcr serve answers on the admin socket.
func writeServerState(ctx context.Context, cfg *config.Config, w io.Writer) {
	client, err := admin.Dial(ctx, cfg.DVCR.AdminSocket)
	if err != nil {
		return
	}
	st, err := client.Status(ctx)
	switch {
	case err != nil:
	case st.GCRunning:
		fmt.Fprintln(w, "A garbage collection run is in progress: the registry is read-only.")
	case st.ReadOnly:
		fmt.Fprintln(w, "The registry is read-only (storage.maintenance.readonly).")
	}
}
