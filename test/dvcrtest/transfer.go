package dvcrtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/progress"
)

// TransferRun is one run of `dvcr import -o json` or `dvcr export -o json`.
type TransferRun[R any] struct {
	Result   *R // nil unless it succeeded
	Events   []progress.Event
	Stderr   string
	ExitCode int
}

// transferTimeout bounds one run of the command.
const transferTimeout = 5 * time.Minute

// runTransfer runs `bin/dvcr ARGS...` (with -o json) and parses its
// output: events, then the result line, told apart by resultKey.
func runTransfer[R any](t testing.TB, stdin *bytes.Reader, resultKey string, args ...string) TransferRun[R] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), transferTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t, "dvcr"), args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	run := TransferRun[R]{Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		run.ExitCode = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("dvcr %s: %v\n%s", args[0], err, stderr.String())
	}
	run.parse(t, args[0], resultKey, stdout.String())
	return run
}

// parse reads the NDJSON: events, then the result when it succeeded.
func (r *TransferRun[R]) parse(t testing.TB, verb, resultKey, out string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte(`"`+resultKey+`"`)) {
			r.Result = new(R)
			if err := json.Unmarshal(line, r.Result); err != nil {
				t.Fatalf("dvcr %s result %q: %v", verb, line, err)
			}
			continue
		}
		var e progress.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("dvcr %s -o json printed %q: %v", verb, line, err)
		}
		r.Events = append(r.Events, e)
	}
	if r.ExitCode == 0 && r.Result == nil {
		t.Fatalf("dvcr %s exited 0 without a result:\n%s\n%s", verb, out, r.Stderr)
	}
}
