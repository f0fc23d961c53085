package gccmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/admin"
	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/logging"
)

type runFlags struct {
	yes    bool
	output common.Output
}

func newRun(opts *common.Options, streams common.Streams) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [--yes]",
		Short: "Run garbage collection now (the registry is read-only while it runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGC(cmd.Context(), opts, f, streams, "manual")
		},
	}
	cmd.Flags().BoolVarP(&f.yes, "yes", "y", false, "do not ask for confirmation")
	common.AddOutputFlag(cmd.Flags(), &f.output)
	return cmd
}

func newAutoCleanup(opts *common.Options, streams common.Streams) *cobra.Command {
	f := &runFlags{yes: true}
	cmd := &cobra.Command{
		Use:   "auto-cleanup",
		Short: "Run garbage collection without prompting, as the schedule does; exit 0 only on success",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGC(cmd.Context(), opts, f, streams, "auto-cleanup")
		},
	}
	common.AddOutputFlag(cmd.Flags(), &f.output)
	return cmd
}

func runGC(ctx context.Context, opts *common.Options, f *runFlags, streams common.Streams, trigger string) error {
	if err := f.output.Validate(); err != nil {
		return err
	}
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	if err := confirmRun(ctx, opts, f, streams); err != nil {
		return err
	}
	log := logging.Clocked(opts.Logger(), "gc")
	progress := func(line string) { log.Info(line) }
	res, runErr := execute(ctx, opts, cfg.DVCR.AdminSocket, trigger, progress)
	if res == nil {
		return runErr
	}
	if f.output.JSON() {
		if err := common.WriteJSON(streams.Out, res); err != nil {
			return err
		}
	} else if err := writeResult(streams, res); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("garbage collection failed: %w", runErr)
	}
	return nil
}

// confirmRun shows an operator at a terminal what the run would delete
// before asking; --yes skips both, and without a terminal it refuses.
func confirmRun(ctx context.Context, opts *common.Options, f *runFlags, streams common.Streams) error {
	const question = "Run garbage collection now? The registry is read-only while it runs; the images above and unreferenced blobs are deleted."
	if !f.yes && common.IsTerminal(streams.In) {
		report, err := checkReport(ctx, opts, gc.DefaultPageSize)
		if err != nil {
			return err
		}
		if err := report.WriteText(streams.Out); err != nil {
			return err
		}
	}
	return common.Confirm(streams, question, f.yes)
}

// execute runs through the running dvcr serve when there is one (it owns the
// read-only switch and the caches), else directly on storage.
func execute(ctx context.Context, opts *common.Options, socket, trigger string, progress func(string)) (*gc.Result, error) {
	client, err := admin.Dial(ctx, socket)
	if err != nil {
		if !errors.Is(err, admin.ErrNotRunning) {
			return nil, err
		}
		return runOffline(ctx, opts, trigger, progress)
	}
	progress("running through dvcr serve (admin socket " + socket + ")")
	raw, runErr := client.RunGC(ctx, trigger, progress)
	if len(raw) == 0 {
		return nil, runErr
	}
	var res gc.Result
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("reading the run's record: %w", err)
	}
	return &res, runErr
}

func runOffline(ctx context.Context, opts *common.Options, trigger string, progress func(string)) (*gc.Result, error) {
	cfg, err := opts.Config()
	if err != nil {
		return nil, err
	}
	if err := common.EnsureNoServer(cfg); err != nil {
		return nil, err
	}
	progress("no dvcr serve is running: working directly on storage")
	collector, err := gc.NewCollector(ctx, cfg, nil, opts.RESTConfig)
	if err != nil {
		return nil, err
	}
	if collector.Hooks, err = gc.TestHooksFrom(os.Getenv); err != nil {
		return nil, err
	}
	return collector.Run(ctx, trigger, progress)
}

func writeResult(streams common.Streams, res *gc.Result) error {
	outcome := "succeeded"
	if !res.Succeeded() {
		outcome = "failed"
	}
	fmt.Fprintf(streams.Out, "Garbage collection %s in %s (read-only for %.1fs).\n",
		outcome, res.FinishedAt.Sub(res.StartedAt).Round(time.Millisecond), res.ReadOnlySeconds)
	if len(res.Deleted) > 0 {
		fmt.Fprintln(streams.Out, "Deleted images:")
		if err := common.WriteTable(streams.Out, []string{"KIND", "NAMESPACE", "NAME"}, imageRows(res.Deleted)); err != nil {
			return err
		}
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintln(streams.Out, "Kept, modified within the grace period:")
		if err := common.WriteTable(streams.Out, []string{"KIND", "NAMESPACE", "NAME"}, imageRows(res.Skipped)); err != nil {
			return err
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(streams.Out, "Warning:", w)
	}
	_, err := fmt.Fprintln(streams.Out, res.Message)
	return err
}

func imageRows(images []gc.EligibleImage) [][]string {
	rows := make([][]string, 0, len(images))
	for _, img := range images {
		rows = append(rows, []string{img.Kind, img.Namespace, img.Name})
	}
	return rows
}
