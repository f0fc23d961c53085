// Package config loads DVCR's configuration file: a distribution registry
// config.yml, unchanged, plus DVCR's own settings in a top-level "dvcr:"
// section. Every invalid value is reported with the key that holds it.
package config

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/distribution/distribution/v3/configuration"
)

// Default values of the dvcr: section.
const (
	DefaultRegistryHost     = "dvcr.d8-virtualization.svc"
	DefaultAdminSocket      = "/var/run/dvcr/admin.sock"
	DefaultGCTimeout        = 10 * time.Minute
	DefaultGCDrainTimeout   = time.Minute
	DefaultGCGracePeriod    = time.Hour
	DefaultRetryAfter       = 10 * time.Second
	DefaultShutdownTimeout  = 30 * time.Second
	DefaultConcurrency      = 4
	DefaultUploadTimeout    = time.Hour
	DefaultClusterNamespace = "d8-virtualization"
	DefaultLeaseDuration    = 15 * time.Second
	DefaultRenewDeadline    = 10 * time.Second
	defaultConfigSourceName = "embedded defaults"
)

// Config is the whole configuration of a DVCR process.
type Config struct {
	// Source names where the configuration came from, for messages.
	Source string
	// Registry is the distribution registry configuration. DVCR-owned keys
	// (storage.maintenance.readonly) are removed from it after parsing.
	Registry *configuration.Configuration
	// DVCR holds the dvcr: section with defaults applied.
	DVCR DVCR
	// StartReadOnly is true when storage.maintenance.readonly.enabled was set:
	// the registry then stays read-only until the setting is removed.
	StartReadOnly bool
}

// DVCR is the top-level dvcr: section.
//
// The json tags are the keys of the section (decodeSection); want says what
// a key takes, in the message that refuses a value of another type.
type DVCR struct {
	RegistryHost string       `json:"registryHost"`
	AdminSocket  string       `json:"adminSocket"`
	Repositories Repositories `json:"repositories"`
	GC           GC           `json:"gc"`
	Verify       Verify       `json:"verify"`
	Provisioning Provisioning `json:"provisioning"`
	Cluster      Cluster      `json:"cluster"`
}

// Cluster configures replicas of dvcr serve that share one storage (S3) and
// coordinate through Leases in the Kubernetes API.
type Cluster struct {
	Enabled bool `json:"enabled"`
	// Namespace is where the Leases live.
	Namespace string `json:"namespace"`
	// LeaseDuration: a replica whose Lease was not renewed for this long
	// (plus a margin) is taken for gone.
	LeaseDuration time.Duration `json:"leaseDuration"`
	// RenewDeadline: a replica that could not renew its Lease or read the
	// GC state for this long refuses writes on its own. Shorter than
	// LeaseDuration, so a replica has fenced itself before the others take
	// it for gone.
	RenewDeadline time.Duration `json:"renewDeadline"`
}

// Provisioning configures the controller that fills ClusterVirtualImage and
// VirtualImage resources from their data sources.
type Provisioning struct {
	Enabled bool `json:"enabled"`
	// Concurrency is how many imports run at once; the rest wait in Pending.
	Concurrency int `json:"concurrency" want:"a whole number from 1 to 256"`
	// RegistryURL is the host[:port] written into status.target.registryURL;
	// empty means RegistryHost.
	RegistryURL string `json:"registryURL"`
	Upload      Upload `json:"upload"`
}

// Upload configures the upload endpoint's URLs and expiry.
type Upload struct {
	// InClusterURL is the base URL of /upload inside the cluster; empty
	// means http://<http.addr>/upload.
	InClusterURL string `json:"inClusterURL" want:"a URL string"`
	// ExternalURL is the base URL published through an Ingress; empty means
	// there is none.
	ExternalURL string `json:"externalURL" want:"a URL string"`
	// Timeout is how long an image waits for its upload before it fails.
	Timeout time.Duration `json:"timeout"`
}

// Repositories configures the repository name policy.
type Repositories struct {
	// AllowUnmanaged lets pushes go to repositories outside cvi/, vi/<ns>/
	// and vd/<ns>/.
	AllowUnmanaged bool `json:"allowUnmanaged"`
}

// GC configures the integrated garbage collector.
type GC struct {
	// Schedule is a 5-field cron expression; empty disables scheduled runs.
	Schedule     string        `json:"schedule" want:"a cron expression as a string"`
	Timeout      time.Duration `json:"timeout"`
	DrainTimeout time.Duration `json:"drainTimeout"`
	GracePeriod  time.Duration `json:"gracePeriod"`
}

// Verify configures scheduled storage verification (package verify).
type Verify struct {
	// Schedule is a 5-field cron expression; empty disables scheduled runs.
	Schedule string `json:"schedule" want:"a cron expression as a string"`
}

// Load reads and validates the configuration file at path. An empty path
// selects the embedded defaults.
func Load(path string) (*Config, error) {
	if path == "" {
		return Parse(defaultConfigSourceName, []byte(DefaultYAML))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return Parse(path, data)
}

// Parse parses a configuration file's content; source names it in errors.
func Parse(source string, data []byte) (*Config, error) {
	reg, err := configuration.Parse(bytes.NewReader(data))
	if err != nil {
		// The registry parser rejects a missing or second storage driver
		// itself, without naming a key; report those as a KeyError.
		if storageErr := fileStorageError(data, err); storageErr != nil {
			err = storageErr
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, source, err)
	}
	section, err := parseDVCRSection(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, source, err)
	}
	cfg := &Config{Source: source, Registry: reg, DVCR: section}
	if err := cfg.normalizeRegistry(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, source, err)
	}
	return cfg, nil
}

// normalizeRegistry validates the registry part and takes over the keys DVCR
// implements itself.
func (c *Config) normalizeRegistry() error {
	if err := validateStorage(c.Registry.Storage); err != nil {
		return err
	}
	readOnly, err := takeMaintenanceReadOnly(c.Registry.Storage)
	if err != nil {
		return err
	}
	c.StartReadOnly = readOnly
	if err := c.checkReplicas(); err != nil {
		return err
	}
	// A fixed secret keeps upload session tokens valid when the registry
	// application is rebuilt to drop its caches after garbage collection.
	if c.Registry.HTTP.Secret == "" {
		c.Registry.HTTP.Secret = randomSecret()
	}
	return nil
}

// checkReplicas refuses cluster mode on settings that replicas cannot
// share: a store in each process's memory, and a random http.secret (an
// upload whose chunks reach different replicas needs the same secret on all).
func (c *Config) checkReplicas() error {
	if !c.DVCR.Cluster.Enabled {
		return nil
	}
	if _, ok := c.Registry.Storage["inmemory"]; ok {
		return keyError("dvcr.cluster.enabled", true, "the inmemory storage driver keeps each replica's images in its own memory; replicas need shared storage (s3)")
	}
	if c.Registry.HTTP.Secret == "" {
		return keyError("http.secret", "", "replicas (dvcr.cluster.enabled) need the same http.secret on every replica, or an upload whose requests reach different replicas fails")
	}
	return nil
}

// takeMaintenanceReadOnly removes storage.maintenance.readonly from the
// registry configuration (upstream answers 405 and needs a restart to leave
// it) and reports whether it was enabled.
func takeMaintenanceReadOnly(storage configuration.Storage) (bool, error) {
	maintenance, ok := storage["maintenance"]
	if !ok {
		return false, nil
	}
	raw, ok := maintenance["readonly"]
	if !ok {
		return false, nil
	}
	delete(maintenance, "readonly")
	m, ok := raw.(map[any]any)
	if !ok {
		return false, keyError("storage.maintenance.readonly", raw, "a map with key enabled")
	}
	enabled, ok := m["enabled"]
	if !ok {
		return false, nil
	}
	b, ok := enabled.(bool)
	if !ok {
		return false, keyError("storage.maintenance.readonly.enabled", enabled, "true or false")
	}
	return b, nil
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return hex.EncodeToString(b)
}
