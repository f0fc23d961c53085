// Package lscmd implements `dvcr-cleaner ls cvi|vi|vd [NAME] [-n NS | -A]`:
// the repositories in the registry, read from storage.
package lscmd

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/dvcr/dvcr/cli/cleaner/common"
	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/storage"
)

type flags struct {
	namespace     string
	allNamespaces bool
	output        common.Output
}

// NewCommand returns the `ls` command.
func NewCommand(opts *common.Options, streams common.Streams) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "ls cvi|vi|vd [NAME] [-n NAMESPACE | -A]",
		Short: "List the repositories of one kind in the registry",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), opts, f, streams, args)
		},
	}
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", "default", "namespace of vi and vd repositories")
	cmd.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "list vi and vd repositories of every namespace")
	common.AddOutputFlag(cmd.Flags(), &f.output)
	return cmd
}

// Entry is one listed repository.
type Entry struct {
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Repository string `json:"repository"`
	Tags       int    `json:"tags"`
}

func run(ctx context.Context, opts *common.Options, f *flags, streams common.Streams, args []string) error {
	if err := f.output.Validate(); err != nil {
		return err
	}
	kind, err := naming.ParseKind(args[0])
	if err != nil {
		return err
	}
	_, driver, err := opts.Storage(ctx)
	if err != nil {
		return err
	}
	inv, err := storage.ListRepositories(ctx, driver)
	if err != nil {
		return err
	}
	entries := []Entry{}
	for _, repo := range inv.Repos {
		if !f.matches(repo, kind, args) {
			continue
		}
		tags, err := storage.CountTags(ctx, driver, repo.Path)
		if err != nil {
			return err
		}
		entries = append(entries, Entry{Kind: kind.ResourceKind(), Namespace: repo.Namespace, Name: repo.Name, Repository: repo.Path, Tags: tags})
	}
	if f.output.JSON() {
		return common.WriteJSON(streams.Out, entries)
	}
	return writeTable(streams, kind, entries)
}

func (f *flags) matches(repo storage.Repo, kind naming.Kind, args []string) bool {
	if repo.Kind != kind {
		return false
	}
	if kind.Namespaced() && !f.allNamespaces && repo.Namespace != f.namespace {
		return false
	}
	return len(args) < 2 || repo.Name == args[1]
}

func writeTable(streams common.Streams, kind naming.Kind, entries []Entry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintf(streams.Out, "No %s repositories found.\n", kind)
		return err
	}
	header := []string{"NAME", "TAGS", "REPOSITORY"}
	if kind.Namespaced() {
		header = append([]string{"NAMESPACE"}, header...)
	}
	rows := make([][]string, 0, len(entries))
	for _, e := range entries {
		row := []string{e.Name, strconv.Itoa(e.Tags), e.Repository}
		if kind.Namespaced() {
			row = append([]string{e.Namespace}, row...)
		}
		rows = append(rows, row)
	}
	return common.WriteTable(streams.Out, header, rows)
}
