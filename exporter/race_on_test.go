//go:build race

package exporter

// raceEnabled: the race detector allocates where a plain build does not,
// so allocation counts are not checked under it.
const raceEnabled = true
