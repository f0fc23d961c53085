//go:build bench

package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
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
