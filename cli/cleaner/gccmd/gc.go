// Package gccmd implements `dvcr-cleaner gc`: check, run, auto-cleanup and
// status of the garbage collector.
package gccmd

import (
	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/cli/cleaner/common"
)

// NewCommand returns the `gc` command group.
func NewCommand(opts *common.Options, streams common.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Garbage collection of images whose resources are gone",
	}
	cmd.AddCommand(
		newCheck(opts, streams),
		newRun(opts, streams),
		newAutoCleanup(opts, streams),
		newStatus(opts, streams),
	)
	return cmd
}
