//go:build bench

package bench

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The status column of the reports' target tables.
const (
	verdictMet    = "met"
	verdictMissed = "**missed**"
)

func verdict(ok bool) string {
	if ok {
		return verdictMet
	}
	return verdictMissed
}

// ratioVerdict: the ratio of the medians ≥ want: met; lower by less than
// the run-to-run noise (half the larger relative range of the runs
// compared) and the fastest run (best, against the other median) reaches
// the target: within noise; otherwise missed. The second condition keeps a
// disturbed run (other work on a shared machine) from excusing a real
// shortfall.
func ratioVerdict(ratio, best, want, noise float64) string {
	switch {
	case ratio >= want:
		return ppVerdictMet
	case ratio >= want*(1-noise) && best >= want:
		return ppVerdictNoise
	}
	return ppVerdictMissed
}

// writeMachine writes the report lines every benchmark starts with: when,
// and on how many cores and how much memory.
func writeMachine(b *strings.Builder) {
	fmt.Fprintf(b, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(b, "- nproc: %d\n", runtime.NumCPU())
	fmt.Fprintf(b, "- Memory: %s\n", memTotal())
}

func memTotal() string {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				break
			}
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}

// writeReport writes a benchmark's report to docPath, keeping the
// hand-written findings below ppFindingsMarker of the file it replaces.
// A partial run (a knob narrowed it; knobs names them) leaves the committed
// report alone.
func writeReport(t *testing.T, docPath, report string, partial bool, knobs string) {
	t.Helper()
	if partial {
		t.Logf("%s is set: %s is left as it is", knobs, docPath)
		return
	}
	if old, err := os.ReadFile(docPath); err == nil {
		if i := bytes.Index(old, []byte(ppFindingsMarker)); i >= 0 {
			report += "\n" + string(old[i:])
		}
	}
	if err := os.WriteFile(docPath, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
}
