//go:build !race

package exporter

// raceEnabled: see race_on_test.go.
const raceEnabled = false
