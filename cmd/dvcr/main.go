// Command dvcr runs the DVCR registry (`dvcr serve [--config FILE]`) and
// imports disk images into it (`dvcr import SOURCE REPOSITORY`) and serves
// the web console (`dvcr console`).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/cli/consolecmd"
	"github.com/dvcr/dvcr/cli/exportcmd"
	"github.com/dvcr/dvcr/cli/importcmd"
	"github.com/dvcr/dvcr/cli/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "dvcr",
		Short:         "DVCR: the in-cluster registry of virtual machine disk images",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serve.NewCommand(serve.Streams{Out: os.Stdout, Err: os.Stderr}))
	root.AddCommand(consolecmd.NewCommand(consolecmd.Streams{Out: os.Stdout, Err: os.Stderr}))
	root.AddCommand(importcmd.NewCommand(importcmd.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
	root.AddCommand(exportcmd.NewCommand(exportcmd.Streams{Out: os.Stdout, Err: os.Stderr}))
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "dvcr:", err)
		stop()
		os.Exit(1)
	}
}
