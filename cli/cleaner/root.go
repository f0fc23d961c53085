// Package cleaner builds the `dvcr-cleaner` command tree: the operator CLI
// run inside the DVCR container with `kubectl exec deploy/dvcr -- dvcr-cleaner`.
// Every verb lives in its own package, as a constructor over library calls;
// streams are injected.
package cleaner

import (
	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/cli/cleaner/deletecmd"
	"github.com/dvcr/dvcr/cli/cleaner/gccmd"
	"github.com/dvcr/dvcr/cli/cleaner/lscmd"
	"github.com/dvcr/dvcr/cli/cleaner/verifycmd"
	"github.com/dvcr/dvcr/logging"
)

// NewCommand returns the root `dvcr-cleaner` command.
func NewCommand(streams common.Streams) *cobra.Command {
	opts := &common.Options{Err: streams.Err}
	root := &cobra.Command{
		Use:           "dvcr-cleaner",
		Short:         "Inspect and clean the DVCR registry of images whose resources are gone",
		SilenceUsage:  true,
		SilenceErrors: true,
		// client-go's lines (klog) in the format of --log-format.
		PersistentPreRun: func(*cobra.Command, []string) { logging.RouteKlog(opts.Logger()) },
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	opts.AddFlags(root.PersistentFlags())
	root.AddCommand(
		gccmd.NewCommand(opts, streams),
		lscmd.NewCommand(opts, streams),
		deletecmd.NewCommand(opts, streams),
		verifycmd.NewCommand(opts, streams),
	)
	return root
}
