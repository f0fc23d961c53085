package verifycmd

import (
	"context"
	"strconv"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/units"
	"github.com/dvcr/dvcr/verify"
)

func newStatus(opts *common.Options, streams common.Streams) *cobra.Command {
	return common.StatusCommand[verify.Result]{
		Short: "Show the results of the last verification runs",
		Empty: "No verification runs recorded yet.",
		List: func(ctx context.Context, d storagedriver.StorageDriver) ([]verify.Result, error) {
			return verify.NewResultStore(d).List(ctx)
		},
		Header: []string{"STARTED", "TRIGGER", "RESULT", "DURATION", "BLOBS", "READ", "IMAGES", "WITH-PROBLEMS", "PROBLEMS", "ERROR"},
		Row:    statusRow,
	}.Command(opts, streams)
}

func statusRow(r verify.Result) []string {
	return []string{
		r.StartedAt.Local().Format(time.DateTime), r.Trigger, r.Result,
		r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String(),
		strconv.Itoa(r.BlobsChecked), units.FormatBytes(uint64(max(r.BytesRead, 0))),
		strconv.Itoa(len(r.Images)), strconv.Itoa(r.ImagesWithProblems()), strconv.Itoa(r.ProblemCount()), r.Error,
	}
}
