// Package deletecmd implements `dvcr-cleaner delete cvi|vi|vd NAME [-n NS]`:
// removes one repository, through the running dvcr serve when there is one
// (so that it drops its caches), else directly on storage.
package deletecmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/admin"
	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/storage"
)

type flags struct {
	namespace string
	yes       bool
	output    common.Output
}

// NewCommand returns the `delete` command.
func NewCommand(opts *common.Options, streams common.Streams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "delete cvi|vi|vd NAME [-n NAMESPACE] [--yes]",
		Short: "Remove one repository (its blobs go at the next garbage collection run)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), opts, f, streams, args[0], args[1])
		},
	}
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "default", "namespace of a vi or vd")
	cmd.Flags().BoolVarP(&f.yes, "yes", "y", false, "do not ask for confirmation")
	common.AddOutputFlag(cmd.Flags(), &f.output)
	return cmd
}

// Result is what delete reports.
type Result struct {
	Repository string `json:"repository"`
	Via        string `json:"via"` // server or storage
}

func run(ctx context.Context, opts *common.Options, f *flags, streams common.Streams, kindArg, name string) error {
	if err := f.output.Validate(); err != nil {
		return err
	}
	kind, err := naming.ParseKind(kindArg)
	if err != nil {
		return err
	}
	cfg, driver, err := opts.Storage(ctx)
	if err != nil {
		return err
	}
	ns := ""
	if kind.Namespaced() {
		ns = f.namespace
	}
	repoPath, err := storage.FindRepository(ctx, driver, naming.RepositoryFor(cfg.DVCR.RegistryHost, kind, ns, name))
	if err != nil {
		return err
	}
	if err := common.Confirm(streams, fmt.Sprintf("Delete repository %s (%s %s)?", repoPath, kind.ResourceKind(), name), f.yes); err != nil {
		return err
	}
	res := Result{Repository: repoPath, Via: "server"}
	client, err := admin.Dial(ctx, cfg.DVCR.AdminSocket)
	switch {
	case err == nil:
		err = client.DeleteRepository(ctx, repoPath)
	case errors.Is(err, admin.ErrNotRunning):
		res.Via = "storage"
		if err = common.EnsureNoServer(cfg); err == nil {
			err = storage.RemoveRepository(ctx, driver, repoPath)
		}
	}
	if err != nil {
		return err
	}
	if f.output.JSON() {
		return common.WriteJSON(streams.Out, res)
	}
	_, err = fmt.Fprintf(streams.Out, "Deleted repository %s. Its blobs are removed by the next garbage collection run.\n", repoPath)
	return err
}
