package dvcrtest

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"
)

// CleanerResult is what a dvcr-cleaner run printed and how it exited.
type CleanerResult struct {
	Stdout, Stderr string
	ExitCode       int
}

// Cleaner runs bin/dvcr-cleaner with args (no terminal on stdin) and
// returns its output; it fails the test only when the binary cannot run.
func Cleaner(t testing.TB, args ...string) CleanerResult {
	t.Helper()
	bin := Binary(t, "dvcr-cleaner")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := CleanerResult{Stdout: out.String(), Stderr: errOut.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("dvcr-cleaner %v: %v", args, err)
	}
	return res
}

// MustCleaner is Cleaner that fails the test on a non-zero exit.
func MustCleaner(t testing.TB, args ...string) CleanerResult {
	t.Helper()
	res := Cleaner(t, args...)
	if res.ExitCode != 0 {
		t.Fatalf("dvcr-cleaner %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, res.ExitCode, res.Stdout, res.Stderr)
	}
	return res
}
