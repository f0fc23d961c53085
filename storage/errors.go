package storage

import "errors"

// Sentinel errors of the storage package; test them with errors.Is.
var (
	// ErrUsageUnknown: the storage driver has no notion of a volume's space.
	ErrUsageUnknown = errors.New("storage usage is only known for the filesystem driver")
	// ErrRepositoryNotFound: no such repository in storage.
	ErrRepositoryNotFound = errors.New("repository not found")
)
