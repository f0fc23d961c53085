// Package units renders byte counts for people: IEC units with one decimal,
// the form of every report and status (36.3GiB).
package units

import "fmt"

// FormatBytes renders a size in IEC units with one decimal: 512.0B,
// 36.3GiB, 1.5TiB.
func FormatBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	// 1023.96 KiB would print as "1024.0KiB": carry to the next unit.
	if s := fmt.Sprintf("%.1f", v); s == "1024.0" && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}
