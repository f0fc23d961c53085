// Package storage works on the registry's storage through distribution's
// storage driver (never a hard-coded filesystem path, so that other drivers
// work too): the layout of repositories and blobs (layout.go), the inventory
// of repositories, their removal, and the usage statistics of the volume.
package storage
