package common

import (
	"context"
	"fmt"
	"io"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/config"
)

// StatusCommand is a `status` command over the run records a command keeps
// in storage (gc, verify): newest first, a table or JSON.
type StatusCommand[T any] struct {
	Short  string // the command's one-line help
	Empty  string // printed when nothing is recorded
	List   func(ctx context.Context, driver storagedriver.StorageDriver) ([]T, error)
	Header []string
	Row    func(T) []string
	// Preamble, when set, prints what is going on right now before the
	// table (not in JSON).
	Preamble func(ctx context.Context, cfg *config.Config, w io.Writer)
}

// Command returns the cobra command.
func (s StatusCommand[T]) Command(opts *Options, streams Streams) *cobra.Command {
	var output Output
	cmd := &cobra.Command{
		Use:   "status",
		Short: s.Short,
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return s.run(cmd.Context(), opts, output, streams) },
	}
	AddOutputFlag(cmd.Flags(), &output)
	return cmd
}

// run reads the records from storage, where every run (through the server
// or offline) writes them.
func (s StatusCommand[T]) run(ctx context.Context, opts *Options, output Output, streams Streams) error {
	if err := output.Validate(); err != nil {
		return err
	}
	cfg, driver, err := opts.Storage(ctx)
	if err != nil {
		return err
	}
	results, err := s.List(ctx, driver)
	if err != nil {
		return err
	}
	if output.JSON() {
		return WriteJSON(streams.Out, results)
	}
	if s.Preamble != nil {
		s.Preamble(ctx, cfg, streams.Out)
	}
	if len(results) == 0 {
		_, err := fmt.Fprintln(streams.Out, s.Empty)
		return err
	}
	rows := make([][]string, 0, len(results))
	for _, r := range results {
		rows = append(rows, s.Row(r))
	}
	return WriteTable(streams.Out, s.Header, rows)
}
