package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/config"
)

// specSection is the dvcr: section exactly as SPEC "Configuration" shows it.
const specSection = `dvcr:
  registryHost: dvcr.d8-virtualization.svc  # host used to shorten long repository names
  adminSocket: /var/run/dvcr/admin.sock     # local admin endpoint used by dvcr-cleaner
  repositories:
    allowUnmanaged: false   # reject pushes outside cvi/, vi/<ns>/, vd/<ns>/ (400 NAME_INVALID)
  gc:
    schedule: ""            # 5-field cron (CRON_TZ= prefix allowed); empty = disabled (the default)
    timeout: 10m            # whole run; past it the run aborts and writes resume
    drainTimeout: 1m        # wait for in-flight writes after switching to read-only
    gracePeriod: 1h         # blobs and repositories modified more recently are never deleted; 0s = none
`

// minimalRegistry is the smallest registry part the invalid-value cases are
// appended to, so that only the dvcr: section can be at fault.
const minimalRegistry = `version: 0.1
storage:
  inmemory: {}
http:
  addr: 127.0.0.1:0
`

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func defaultSection() config.DVCR {
	return config.DVCR{
		RegistryHost: config.DefaultRegistryHost,
		AdminSocket:  config.DefaultAdminSocket,
		GC: config.GC{
			Timeout:      config.DefaultGCTimeout,
			DrainTimeout: config.DefaultGCDrainTimeout,
			GracePeriod:  config.DefaultGCGracePeriod,
		},
		Provisioning: defaultProvisioning(),
		Cluster:      defaultCluster(),
	}
}

// prov is a config whose dvcr.provisioning section holds line.
func prov(line string) string {
	return minimalRegistry + "dvcr:\n  provisioning:\n    " + line + "\n"
}

func defaultCluster() config.Cluster {
	return config.Cluster{Namespace: config.DefaultClusterNamespace, LeaseDuration: config.DefaultLeaseDuration, RenewDeadline: config.DefaultRenewDeadline}
}

func defaultProvisioning() config.Provisioning {
	return config.Provisioning{
		Concurrency: config.DefaultConcurrency,
		Upload:      config.Upload{Timeout: config.DefaultUploadTimeout},
	}
}

// checkConfigMap checks that every setting of the DVCR ConfigMap in
// testdata/configmap.yml reached the registry configuration unchanged.
func checkConfigMap(t *testing.T, cfg *config.Config) {
	t.Helper()
	reg := cfg.Registry
	if got := reg.Version.Major(); got != 0 || reg.Version.Minor() != 1 {
		t.Errorf("version = %v, want 0.1", reg.Version)
	}
	if got := reg.Log.Fields["service"]; got != "registry" {
		t.Errorf("log.fields.service = %v, want registry", got)
	}
	if got := reg.Storage.Type(); got != "filesystem" {
		t.Errorf("storage driver = %q, want filesystem", got)
	}
	if got := reg.Storage["filesystem"]["rootdirectory"]; got != "/var/lib/registry" {
		t.Errorf("storage.filesystem.rootdirectory = %v", got)
	}
	if got := reg.Storage["cache"]["blobdescriptor"]; got != "inmemory" {
		t.Errorf("storage.cache.blobdescriptor = %v", got)
	}
	if got := reg.Storage["delete"]["enabled"]; got != true {
		t.Errorf("storage.delete.enabled = %v", got)
	}
	// DVCR takes storage.maintenance.readonly over; uploadpurging stays.
	if _, ok := reg.Storage["maintenance"]["readonly"]; ok {
		t.Errorf("storage.maintenance.readonly still in the registry configuration")
	}
	purging, ok := reg.Storage["maintenance"]["uploadpurging"].(map[any]any)
	if !ok {
		t.Fatalf("storage.maintenance.uploadpurging = %#v", reg.Storage["maintenance"]["uploadpurging"])
	}
	if purging["enabled"] != true || purging["age"] != "168h" || purging["interval"] != "24h" || purging["dryrun"] != false {
		t.Errorf("storage.maintenance.uploadpurging = %v", purging)
	}
	if reg.HTTP.Addr != ":5000" {
		t.Errorf("http.addr = %q", reg.HTTP.Addr)
	}
	if got := reg.HTTP.Headers.Values("X-Content-Type-Options"); len(got) != 1 || got[0] != "nosniff" {
		t.Errorf("http.headers.X-Content-Type-Options = %v", got)
	}
	if reg.HTTP.Debug.Addr != ":5001" || !reg.HTTP.Debug.Prometheus.Enabled || reg.HTTP.Debug.Prometheus.Path != "/metrics" {
		t.Errorf("http.debug = %+v", reg.HTTP.Debug)
	}
	if sd := reg.Health.StorageDriver; !sd.Enabled || sd.Interval != 10*time.Second || sd.Threshold != 3 {
		t.Errorf("health.storagedriver = %+v", sd)
	}
	if reg.Auth.Type() != "htpasswd" || reg.Auth["htpasswd"]["realm"] != "Registry Realm" || reg.Auth["htpasswd"]["path"] != "/auth/htpasswd" {
		t.Errorf("auth = %v", reg.Auth)
	}
}

func TestParseValid(t *testing.T) {
	configMap := string(readTestdata(t, "configmap.yml"))
	tests := []struct {
		name          string
		data          string
		wantDVCR      config.DVCR
		wantReadOnly  bool
		wantSecret    string // "" = a random one must have been set
		checkRegistry bool
	}{
		{
			name:          "configmap without dvcr section gets defaults",
			data:          configMap,
			wantDVCR:      defaultSection(),
			checkRegistry: true,
		},
		{
			name:          "configmap with readonly enabled starts read-only",
			data:          string(readTestdata(t, "configmap-readonly.yml")),
			wantDVCR:      defaultSection(),
			wantReadOnly:  true,
			checkRegistry: true,
		},
		{
			name:          "configmap plus SPEC example section",
			data:          configMap + specSection,
			wantDVCR:      defaultSection(),
			checkRegistry: true,
		},
		{
			name: "configmap plus non-default section and fixed secret",
			data: string(readTestdata(t, "full.yml")),
			wantDVCR: config.DVCR{
				RegistryHost: "dvcr.d8-virtualization.svc",
				AdminSocket:  "/var/run/dvcr/admin.sock",
				GC: config.GC{
					Schedule:     "CRON_TZ=Europe/Berlin 0 3 * * *",
					Timeout:      15 * time.Minute,
					DrainTimeout: 90 * time.Second,
					GracePeriod:  2 * time.Hour,
				},
				Provisioning: defaultProvisioning(),
				Cluster:      defaultCluster(),
			},
			wantSecret:    "fixed-secret-from-configmap",
			checkRegistry: true,
		},
		{
			name: "provisioning section",
			data: minimalRegistry + "dvcr:\n  provisioning:\n    enabled: true\n    concurrency: 8\n    registryURL: dvcr.example:5000\n" +
				"    upload:\n      inClusterURL: http://dvcr.d8-virtualization.svc/upload/\n      externalURL: https://virt.example.com/upload\n      timeout: 30m\n",
			wantDVCR: func() config.DVCR {
				d := defaultSection()
				d.Provisioning = config.Provisioning{
					Enabled: true, Concurrency: 8, RegistryURL: "dvcr.example:5000",
					Upload: config.Upload{
						InClusterURL: "http://dvcr.d8-virtualization.svc/upload",
						ExternalURL:  "https://virt.example.com/upload",
						Timeout:      30 * time.Minute,
					},
				}
				return d
			}(),
		},
		{
			name:     "empty dvcr section keeps defaults",
			data:     minimalRegistry + "dvcr:\n",
			wantDVCR: defaultSection(),
		},
		{
			name:     "keys without value keep defaults",
			data:     minimalRegistry + "dvcr:\n  registryHost:\n  gc:\n    timeout:\n    schedule:\n",
			wantDVCR: defaultSection(),
		},
		{
			name: "allowUnmanaged true and gracePeriod 0s",
			data: minimalRegistry + "dvcr:\n  repositories:\n    allowUnmanaged: true\n  gc:\n    gracePeriod: 0s\n    drainTimeout: 0s\n",
			wantDVCR: func() config.DVCR {
				d := defaultSection()
				d.Repositories.AllowUnmanaged = true
				d.GC.GracePeriod = 0
				d.GC.DrainTimeout = 0
				return d
			}(),
		},
		{
			// YAML 1.1 (go-yaml v2, used by the registry and sigs.k8s.io/yaml)
			// reads an unquoted yes as the boolean true; only the quoted
			// string "yes" is rejected (see TestParseInvalid).
			name: "unquoted yes is a YAML 1.1 boolean",
			data: minimalRegistry + "dvcr:\n  repositories:\n    allowUnmanaged: yes\n",
			wantDVCR: func() config.DVCR {
				d := defaultSection()
				d.Repositories.AllowUnmanaged = true
				return d
			}(),
		},
		{
			name: "plain 5-field schedule",
			data: minimalRegistry + "dvcr:\n  gc:\n    schedule: \"30 2 * * 0\"\n",
			wantDVCR: func() config.DVCR {
				d := defaultSection()
				d.GC.Schedule = "30 2 * * 0"
				return d
			}(),
		},
		{
			name: "verify schedule",
			data: minimalRegistry + "dvcr:\n  verify:\n    schedule: \"CRON_TZ=UTC 0 4 * * 6\"\n",
			wantDVCR: func() config.DVCR {
				d := defaultSection()
				d.Verify.Schedule = "CRON_TZ=UTC 0 4 * * 6"
				return d
			}(),
		},
		{
			name:     "storage driver given as a bare string",
			data:     "version: 0.1\nstorage: inmemory\n",
			wantDVCR: defaultSection(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("test.yml", []byte(tt.data))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if cfg.Source != "test.yml" {
				t.Errorf("Source = %q", cfg.Source)
			}
			if cfg.DVCR != tt.wantDVCR {
				t.Errorf("DVCR =\n  %v\nwant\n  %v", cfg.DVCR, tt.wantDVCR)
			}
			if cfg.StartReadOnly != tt.wantReadOnly {
				t.Errorf("StartReadOnly = %t, want %t", cfg.StartReadOnly, tt.wantReadOnly)
			}
			secret := cfg.Registry.HTTP.Secret
			switch {
			case tt.wantSecret != "" && secret != tt.wantSecret:
				t.Errorf("http.secret = %q, want the configured %q", secret, tt.wantSecret)
			case tt.wantSecret == "" && len(secret) != 64:
				t.Errorf("http.secret = %q, want 64 random hex digits", secret)
			}
			if tt.checkRegistry {
				checkConfigMap(t, cfg)
			}
		})
	}
}

func TestRandomSecretDiffers(t *testing.T) {
	data := readTestdata(t, "configmap.yml")
	a, err := config.Parse("a", data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.Parse("b", data)
	if err != nil {
		t.Fatal(err)
	}
	if a.Registry.HTTP.Secret == b.Registry.HTTP.Secret {
		t.Errorf("two parses got the same random http.secret %q", a.Registry.HTTP.Secret)
	}
}

func TestLoad(t *testing.T) {
	t.Run("embedded defaults", func(t *testing.T) {
		cfg, err := config.Load("")
		if err != nil {
			t.Fatalf("Load(\"\"): %v", err)
		}
		if got := cfg.Registry.Storage["filesystem"]["rootdirectory"]; got != "./data" {
			t.Errorf("rootdirectory = %v, want ./data", got)
		}
		if cfg.Registry.HTTP.Addr != "127.0.0.1:5000" {
			t.Errorf("http.addr = %q, want 127.0.0.1:5000", cfg.Registry.HTTP.Addr)
		}
		want := defaultSection()
		want.AdminSocket = "./data/admin.sock"
		if cfg.DVCR != want {
			t.Errorf("DVCR = %v, want %v", cfg.DVCR, want)
		}
		if cfg.StartReadOnly || cfg.Registry.HTTP.Secret == "" {
			t.Errorf("StartReadOnly = %t, secret = %q", cfg.StartReadOnly, cfg.Registry.HTTP.Secret)
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join("testdata", "full.yml")
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if cfg.Source != path || cfg.DVCR.GC.Schedule != "CRON_TZ=Europe/Berlin 0 3 * * *" {
			t.Errorf("Source = %q, DVCR = %v", cfg.Source, cfg.DVCR)
		}
		checkConfigMap(t, cfg)
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := config.Load(filepath.Join(t.TempDir(), "nope.yml"))
		if !errors.Is(err, config.ErrConfig) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want ErrConfig and os.ErrNotExist", err)
		}
	})
	t.Run("invalid file names the file and the key", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config.yml")
		if err := os.WriteFile(path, []byte(minimalRegistry+"dvcr:\n  gc:\n    timeout: -1m\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path)
		var keyErr *config.KeyError
		if !errors.As(err, &keyErr) || keyErr.Key != "dvcr.gc.timeout" || !strings.Contains(err.Error(), path) {
			t.Errorf("err = %v", err)
		}
	})
}
