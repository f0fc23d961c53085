// Command dvcr-cleaner is the operator CLI of DVCR's garbage collector.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dvcr/dvcr/cli/cleaner"
	"github.com/dvcr/dvcr/cli/cleaner/common"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := cleaner.NewCommand(common.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "dvcr-cleaner:", err)
		stop()
		os.Exit(1)
	}
}
