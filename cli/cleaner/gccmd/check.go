package gccmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/gc"
)

type checkFlags struct {
	output   common.Output
	pageSize int64
}

func newCheck(opts *common.Options, streams common.Streams) *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Print what a garbage collection run would delete; changes nothing",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runCheck(cmd.Context(), opts, f, streams) },
	}
	common.AddOutputFlag(cmd.Flags(), &f.output)
	cmd.Flags().Int64Var(&f.pageSize, "page-size", gc.DefaultPageSize, "resources per list request to the API server")
	return cmd
}

func runCheck(ctx context.Context, opts *common.Options, f *checkFlags, streams common.Streams) error {
	if err := f.output.Validate(); err != nil {
		return err
	}
	report, err := checkReport(ctx, opts, f.pageSize)
	if err != nil {
		return err
	}
	if f.output.JSON() {
		return common.WriteJSON(streams.Out, report)
	}
	return report.WriteText(streams.Out)
}

// checkReport lists the registry and the cluster and selects what a run
// would delete.
func checkReport(ctx context.Context, opts *common.Options, pageSize int64) (*gc.CheckReport, error) {
	cfg, driver, err := opts.Storage(ctx)
	if err != nil {
		return nil, err
	}
	restCfg, err := opts.RESTConfig()
	if err != nil {
		return nil, err
	}
	return gc.CheckStore(ctx, cfg, driver, restCfg, pageSize)
}
