// Fault points: where a test makes the process stop in the middle of a run,
// to prove that a restart finds the registry whole and finishes the run's
// work.

package gc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The fault points of a run, in the order a run reaches them.
const (
	faultReadOnly = "readonly" // the registry has just become read-only
	faultMark     = "mark"     // a repository has been marked
	faultRemoval  = "removal"  // a repository has been removed (detached)
	faultDetach   = "detach"   // a blob has been detached or deleted
	faultDelete   = "delete"   // the freeing after the window has begun, and after each entry it deletes
	faultRecord   = "record"   // the record is written but not yet in place
)

// FaultEnv names the environment variable that arms a fault point:
// "POINT" or "POINT:N" makes the process exit with FaultExitCode the Nth
// time (default 1) the run reaches POINT. For tests only.
const FaultEnv = "DVCR_GC_FAULT"

// FaultExitCode is the exit code of a process stopped at a fault point.
const FaultExitCode = 86

// PauseEnv names the environment variable that holds every run's window
// open for a duration (e.g. "3s") once all replicas refuse writes, so that a
// test can probe the registry while the window lasts. For tests only.
const PauseEnv = "DVCR_GC_PAUSE"

// HoldEnv names the environment variable that holds every run's condemned
// set for a duration after the window before deleting it, so that a test
// can race writes against content that is condemned but still in storage.
// For tests only.
const HoldEnv = "DVCR_GC_HOLD"

// testHooks are the test hooks the environment arms.
type testHooks struct {
	fault       func(string)
	pause, hold time.Duration
}

// testHooksFromEnv reads FaultEnv, PauseEnv and HoldEnv.
func testHooksFromEnv() (h testHooks, err error) {
	if h.fault, err = faultFromEnv(); err != nil {
		return h, err
	}
	if h.pause, err = durationFromEnv(PauseEnv); err != nil {
		return h, err
	}
	h.hold, err = durationFromEnv(HoldEnv)
	return h, err
}

// durationFromEnv is the duration the variable name asks for, 0 for none.
func durationFromEnv(name string) (time.Duration, error) {
	spec := os.Getenv(name)
	if spec == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(spec)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: want a duration such as 3s", name, spec)
	}
	return d, nil
}

// faultFromEnv returns the fault hook FaultEnv arms, or nil.
func faultFromEnv() (func(string), error) {
	spec := os.Getenv(FaultEnv)
	if spec == "" {
		return nil, nil
	}
	point, nth, err := parseFault(spec)
	if err != nil {
		return nil, err
	}
	var hits atomic.Int64
	return func(p string) {
		if p == point && hits.Add(1) == int64(nth) {
			fmt.Fprintf(os.Stderr, "dvcr: %s=%s: stopping the process at fault point %q\n", FaultEnv, spec, p)
			os.Exit(FaultExitCode)
		}
	}, nil
}

func parseFault(spec string) (point string, nth int, err error) {
	point, count, hasCount := strings.Cut(spec, ":")
	nth = 1
	if hasCount {
		if nth, err = strconv.Atoi(count); err != nil || nth < 1 {
			return "", 0, fmt.Errorf("%s=%q: the count after ':' must be a positive number", FaultEnv, spec)
		}
	}
	switch point {
	case faultReadOnly, faultMark, faultRemoval, faultDetach, faultDelete, faultRecord:
		return point, nth, nil
	}
	return "", 0, fmt.Errorf("%s=%q: unknown fault point (one of %s, %s, %s, %s, %s, %s)", FaultEnv, spec,
		faultReadOnly, faultMark, faultRemoval, faultDetach, faultDelete, faultRecord)
}
