// Package cleaner builds the `dvcr-cleaner` command tree: the operator CLI
// run inside the DVCR container with `kubectl exec deploy/dvcr -- dvcr-cleaner`.
// Every verb is a constructor over a library call; streams are injected.
package cleaner

import (
	"io"

	"github.com/spf13/cobra"
)

// Streams are the standard streams of the CLI.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// NewCommand returns the root `dvcr-cleaner` command.
func NewCommand(streams Streams) *cobra.Command {
	root := &cobra.Command{
		Use:           "dvcr-cleaner",
		Short:         "Inspect and clean the DVCR registry of images whose resources are gone",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	return root
}
