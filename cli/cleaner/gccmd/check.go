package gccmd

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/storage"
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
	lister, err := gc.NewClusterLister(restCfg)
	if err != nil {
		return nil, err
	}
	lister.PageSize = pageSize
	var usage *storage.Usage
	switch u, err := storage.VolumeUsage(cfg); {
	case err == nil:
		usage = &u
	case !errors.Is(err, storage.ErrUsageUnknown):
		return nil, err
	}
	return gc.Check(ctx, driver, lister, cfg.DVCR.RegistryHost, usage)
}
