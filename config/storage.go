package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/distribution/v3/configuration"
	"sigs.k8s.io/yaml"
)

// StorageDrivers are the storage drivers linked into DVCR, by config key.
var StorageDrivers = []string{"filesystem", "inmemory", "s3"}

// storageSettings are storage keys that configure behaviour, not a driver.
var storageSettings = map[string]bool{
	"maintenance": true, "cache": true, "delete": true, "redirect": true, "tag": true,
}

func validateStorage(storage configuration.Storage) error {
	var drivers []string
	for key := range storage {
		if !storageSettings[key] {
			drivers = append(drivers, key)
		}
	}
	sort.Strings(drivers)
	switch {
	case len(drivers) == 0:
		return keyError("storage", nil, "no storage driver configured (one of "+strings.Join(StorageDrivers, ", ")+")")
	case len(drivers) > 1:
		return keyError("storage", nil, "more than one storage driver configured: "+strings.Join(drivers, ", "))
	}
	for _, known := range StorageDrivers {
		if drivers[0] == known {
			return nil
		}
	}
	return keyError("storage."+drivers[0], nil, fmt.Sprintf("unknown storage driver %q (supported: %s)", drivers[0], strings.Join(StorageDrivers, ", ")))
}

// fileStorageError explains a registry parser error caused by the storage
// section of the file (no driver, or more than one): it returns the
// corresponding KeyError, or nil when the storage section is not at fault.
func fileStorageError(data []byte, parseErr error) error {
	if !strings.Contains(parseErr.Error(), "storage") {
		return nil
	}
	var doc struct {
		Storage map[string]any `json:"storage"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil // e.g. "storage: inmemory", or not YAML at all
	}
	storage := configuration.Storage{}
	for key := range doc.Storage {
		storage[key] = nil
	}
	return validateStorage(storage)
}
