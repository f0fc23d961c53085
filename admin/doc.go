// Package admin is the local admin endpoint of `dvcr serve`: an HTTP API on
// a unix socket (mode 0600) through which dvcr-cleaner asks the one process
// that owns the read-only switch and the registry's caches to run garbage
// collection or delete a repository. The package has both ends: Server
// (mounted by dvcr serve) and Client (used by dvcr-cleaner).
package admin
