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

// TestHooks are what a test arms in every run of a collector
// (Collector.Hooks); the zero value arms none. dvcr serve and dvcr-cleaner
// read them from their environment once, with TestHooksFrom(os.Getenv).
type TestHooks struct {
	// Fault is called at each fault point; FaultEnv arms one that stops
	// the process.
	Fault func(point string)
	// Pause holds the window open this long once every replica refuses
	// writes (PauseEnv).
	Pause time.Duration
	// Hold delays the deletion of the condemned set after the window this
	// long (HoldEnv).
	Hold time.Duration
}

// TestHooksFrom reads FaultEnv, PauseEnv and HoldEnv through getenv.
func TestHooksFrom(getenv func(string) string) (h TestHooks, err error) {
	if h.Fault, err = faultFrom(getenv(FaultEnv)); err != nil {
		return h, err
	}
	if h.Pause, err = durationFrom(PauseEnv, getenv(PauseEnv)); err != nil {
		return h, err
	}
	h.Hold, err = durationFrom(HoldEnv, getenv(HoldEnv))
	return h, err
}

// durationFrom is the duration the variable name set to spec asks for, 0
// for none.
func durationFrom(name, spec string) (time.Duration, error) {
	if spec == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(spec)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: want a duration such as 3s", name, spec)
	}
	return d, nil
}

// faultFrom returns the fault hook FaultEnv set to spec arms, or nil.
func faultFrom(spec string) (func(string), error) {
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
