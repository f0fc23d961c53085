package registry

import "errors"

// Sentinel errors of the registry package; test them with errors.Is.
var (
	// ErrDrainTimeout: writes were still in flight when the drain timeout
	// of Gate.Enter ran out. The registry is read-only nevertheless.
	ErrDrainTimeout = errors.New("writes still in flight after drain timeout")
	// ErrRegistrySetup: the registry could not be built from the configuration.
	ErrRegistrySetup = errors.New("registry setup failed")
)
