package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// source describes what the image is built from.
type source struct {
	root     string    // the repository
	revision string    // commit SHA of HEAD
	created  time.Time // commit time of HEAD, or SOURCE_DATE_EPOCH; UTC
	version  string    // image version
	dirty    bool      // the working tree has uncommitted changes
}

// loadSource reads the revision, the timestamp and the version.
func loadSource(ctx context.Context, o options) (source, error) {
	root, err := moduleRoot(ctx, o)
	if err != nil {
		return source{}, err
	}
	s := source{root: root, version: o.version}
	if s.revision, err = git(ctx, root, "rev-parse", "HEAD"); err != nil {
		return s, err
	}
	if s.created, err = sourceTime(ctx, root); err != nil {
		return s, err
	}
	status, err := git(ctx, root, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return s, err
	}
	s.dirty = status != ""
	if s.version == "" {
		if s.version, err = chartAppVersion(root); err != nil {
			return s, err
		}
	}
	return s, nil
}

// moduleRoot is --root, or the directory of the main module's go.mod.
func moduleRoot(ctx context.Context, o options) (string, error) {
	if o.root != "" {
		return filepath.Abs(o.root)
	}
	out, err := exec.CommandContext(ctx, o.goCmd, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the repository: %s env GOMOD: %w", o.goCmd, err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("finding the repository: not inside a Go module; run from the repository or pass --root")
	}
	return filepath.Dir(gomod), nil
}

// sourceTime is SOURCE_DATE_EPOCH when set, otherwise the commit time of HEAD.
func sourceTime(ctx context.Context, root string) (time.Time, error) {
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds: %w", v, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	out, err := git(ctx, root, "log", "-1", "--format=%cI", "HEAD")
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, out)
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time %q of HEAD: %w", out, err)
	}
	return t.UTC(), nil
}

// chartAppVersion is appVersion of charts/dvcr/Chart.yaml: the tag the chart
// pulls by default.
func chartAppVersion(root string) (string, error) {
	path := filepath.Join(root, "charts", "dvcr", "Chart.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the chart's appVersion: %w", err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &chart); err != nil {
		return "", fmt.Errorf("parsing %s: %w", path, err)
	}
	if chart.AppVersion == "" {
		return "", fmt.Errorf("%s has no appVersion; pass --version", path)
	}
	return chart.AppVersion, nil
}

// git runs git in root and returns its trimmed standard output.
func git(ctx context.Context, root string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// commands are the packages built into the image, by binary name.
var commands = []struct{ name, pkg string }{
	{"dvcr", "./cmd/dvcr"},
	{"dvcr-cleaner", "./cmd/dvcr-cleaner"},
}

// goBuild compiles the commands for linux/arch into dir, static and with no
// path, VCS stamp or symbol table in them. The environment is pinned so that
// the output depends on the sources and the toolchain only: GOFLAGS of the
// caller is dropped and the instruction set levels are the defaults.
func goBuild(ctx context.Context, o options, root, arch, dir string) error {
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", dir + string(filepath.Separator)}
	for _, c := range commands {
		args = append(args, c.pkg)
	}
	cmd := exec.CommandContext(ctx, o.goCmd, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch,
		"GOFLAGS=", "GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=",
	)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for linux/%s: %w\n%s", arch, err, stderr.String())
	}
	return nil
}
