// Package drivers opens the storage driver a configuration names, and hands
// one open driver to every part of a process: distribution's application
// creates its own driver from the configuration, so each rebuild of it
// (the registry's cache reset after a garbage collection) and the collector
// would otherwise each hold a driver of their own — for the inmemory driver,
// each a different, empty store.
package drivers

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/distribution/distribution/v3/configuration"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"

	// Storage drivers linked into DVCR (config.StorageDrivers).
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"
)

// sharedName is the driver name under which an open driver is passed to
// distribution through its configuration.
const sharedName = "dvcr"

// shared holds the open drivers by id, for the factory.
var shared = struct {
	sync.Mutex
	next    int
	drivers map[string]storagedriver.StorageDriver
}{drivers: map[string]storagedriver.StorageDriver{}}

func init() { factory.Register(sharedName, sharedFactory{}) }

type sharedFactory struct{}

// Create returns the open driver the "id" parameter names.
func (sharedFactory) Create(_ context.Context, params map[string]any) (storagedriver.StorageDriver, error) {
	id, _ := params["id"].(string)
	shared.Lock()
	defer shared.Unlock()
	d, ok := shared.drivers[id]
	if !ok {
		return nil, fmt.Errorf("storage.%s: no open driver %q", sharedName, id)
	}
	return d, nil
}

// openMu serializes the swap of http.DefaultClient in Open.
var openMu sync.Mutex

// Open creates the storage driver the configuration names.
func Open(ctx context.Context, storage configuration.Storage) (storagedriver.StorageDriver, error) {
	name := storage.Type()
	// The AWS SDK behind the s3-aws driver starts from http.DefaultClient
	// and, with AWS_CA_BUNDLE set, replaces that client's transport by one
	// trusting the bundle only: every other user of the default client in
	// the process would lose the system roots. The driver gets a client of
	// its own instead.
	openMu.Lock()
	saved := http.DefaultClient
	http.DefaultClient = &http.Client{}
	d, err := factory.Create(ctx, name, storage.Parameters())
	http.DefaultClient = saved
	openMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("storage.%s: %w", name, err)
	}
	return d, nil
}

// Share returns a copy of the storage section whose driver is d itself:
// distribution's application built from it uses d, not a new driver. The
// other keys (cache, delete, maintenance, redirect, tag) are kept.
func Share(storage configuration.Storage, d storagedriver.StorageDriver) configuration.Storage {
	shared.Lock()
	shared.next++
	id := strconv.Itoa(shared.next)
	shared.drivers[id] = d
	shared.Unlock()
	out := configuration.Storage{}
	name := storage.Type()
	for k, v := range storage {
		if k != name {
			out[k] = v
		}
	}
	out[sharedName] = configuration.Parameters{"id": id}
	return out
}
