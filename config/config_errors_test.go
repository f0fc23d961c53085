// The configuration errors: each names its dotted key.

package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/robfig/cron/v3"

	"github.com/dvcr/dvcr/config"
)

func TestParseInvalid(t *testing.T) {
	gc := func(kv string) string { return minimalRegistry + "dvcr:\n  gc:\n    " + kv + "\n" }
	tests := []struct {
		name    string
		data    string
		wantKey string
		wantMsg string // a fragment of the message, besides the key
	}{
		{"cron minute out of range", gc(`schedule: "61 * * * *"`), "dvcr.gc.schedule", "61"},
		{"cron garbage", gc(`schedule: "not a cron"`), "dvcr.gc.schedule", "not a cron"},
		{"cron with six fields", gc(`schedule: "0 0 3 * * *"`), "dvcr.gc.schedule", ""},
		{"cron with unknown zone", gc(`schedule: "CRON_TZ=Mars/Olympus 0 3 * * *"`), "dvcr.gc.schedule", "Mars/Olympus"},
		{"cron not a string", gc(`schedule: [0, 3]`), "dvcr.gc.schedule", ""},
		{"negative timeout", gc("timeout: -1m"), "dvcr.gc.timeout", "negative"},
		{"negative drainTimeout", gc("drainTimeout: -1m"), "dvcr.gc.drainTimeout", "negative"},
		{"negative gracePeriod", gc("gracePeriod: -1m"), "dvcr.gc.gracePeriod", "negative"},
		{"zero timeout", gc("timeout: 0s"), "dvcr.gc.timeout", "greater than zero"},
		{"non-duration timeout", gc("timeout: ten minutes"), "dvcr.gc.timeout", "ten minutes"},
		{"non-duration gracePeriod", gc("gracePeriod: 1 hour"), "dvcr.gc.gracePeriod", "1 hour"},
		{"duration without unit", gc("drainTimeout: 60"), "dvcr.gc.drainTimeout", ""},
		{"allowUnmanaged quoted yes", minimalRegistry + "dvcr:\n  repositories:\n    allowUnmanaged: \"yes\"\n", "dvcr.repositories.allowUnmanaged", "yes"},
		{"registryHost not a string", minimalRegistry + "dvcr:\n  registryHost: [a, b]\n", "dvcr.registryHost", ""},
		{"verify cron garbage", minimalRegistry + "dvcr:\n  verify:\n    schedule: \"every night\"\n", "dvcr.verify.schedule", "every night"},
		{"verify cron not a string", minimalRegistry + "dvcr:\n  verify:\n    schedule: 3\n", "dvcr.verify.schedule", ""},
		{"verify unknown key", minimalRegistry + "dvcr:\n  verify:\n    rate: 1MiB\n", "dvcr.verify.rate", "unknown key"},
		{"unknown key", gc(`shedule: "0 3 * * *"`), "dvcr.gc.shedule", "unknown key"},
		{"concurrency zero", prov("concurrency: 0"), "dvcr.provisioning.concurrency", "1 to 256"},
		{"concurrency fraction", prov("concurrency: 1.5"), "dvcr.provisioning.concurrency", "1 to 256"},
		{"concurrency not a number", prov("concurrency: many"), "dvcr.provisioning.concurrency", "many"},
		{"enabled not a bool", prov(`enabled: "on"`), "dvcr.provisioning.enabled", "on"},
		{"upload URL without scheme", prov("upload:\n      externalURL: virt.example.com/upload"), "dvcr.provisioning.upload.externalURL", "absolute"},
		{"upload timeout zero", prov("upload:\n      timeout: 0s"), "dvcr.provisioning.upload.timeout", "greater than zero"},
		{"unknown top-level key", minimalRegistry + "dvcr:\n  registry: x\n", "dvcr.registry", "unknown key"},
		{"value where a map is expected", minimalRegistry + "dvcr:\n  gc: daily\n", "dvcr.gc", "unknown key"},
		{"dvcr section not a map", minimalRegistry + "dvcr: true\n", "dvcr", ""},
		{"unknown storage driver", "version: 0.1\nstorage:\n  foo: {}\n", "storage.foo", "unknown storage driver"},
		{"two storage drivers", "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /tmp/x\n  inmemory: {}\n", "storage", "filesystem, inmemory"},
		{"no storage driver", "version: 0.1\nstorage:\n  delete:\n    enabled: true\n", "storage", "no storage driver"},
		{"readonly enabled not a bool", "version: 0.1\nstorage:\n  inmemory: {}\n  maintenance:\n    readonly:\n      enabled: \"sure\"\n", "storage.maintenance.readonly.enabled", "sure"},
		{"renew deadline not shorter than the lease", minimalRegistry + "dvcr:\n  cluster:\n    leaseDuration: 10s\n    renewDeadline: 10s\n", "dvcr.cluster.renewDeadline", "shorter than dvcr.cluster.leaseDuration"},
		{"replicas on inmemory storage", "version: 0.1\nstorage:\n  inmemory: {}\nhttp:\n  secret: s\ndvcr:\n  cluster:\n    enabled: true\n", "dvcr.cluster.enabled", "shared storage"},
		{"replicas without a shared secret", "version: 0.1\nstorage:\n  s3: {bucket: b, region: us-east-1}\ndvcr:\n  cluster:\n    enabled: true\n", "http.secret", "same http.secret"},
		{"replicas without a namespace", minimalRegistry + "dvcr:\n  cluster:\n    enabled: true\n    namespace: \"\"\n", "dvcr.cluster.namespace", "namespace"},
		{"readonly not a map", "version: 0.1\nstorage:\n  inmemory: {}\n  maintenance:\n    readonly: true\n", "storage.maintenance.readonly", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("bad.yml", []byte(tt.data))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", cfg.DVCR)
			}
			if !errors.Is(err, config.ErrConfig) {
				t.Errorf("error does not wrap ErrConfig: %v", err)
			}
			var keyErr *config.KeyError
			if !errors.As(err, &keyErr) {
				t.Fatalf("error is not a *KeyError: %v", err)
			}
			if keyErr.Key != tt.wantKey {
				t.Errorf("KeyError.Key = %q, want %q (error: %v)", keyErr.Key, tt.wantKey, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantKey) || !strings.Contains(msg, "bad.yml") {
				t.Errorf("message %q does not name the key %q and the source", msg, tt.wantKey)
			}
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", msg, tt.wantMsg)
			}
		})
	}
}

// TestParseRegistryErrors: errors of the registry part itself are still
// ErrConfig, with the source named.
func TestParseRegistryErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{"not yaml", "version: 0.1\nstorage: [\n"},
		{"unsupported version", "version: 9.9\nstorage:\n  inmemory: {}\n"},
		{"no version", "storage:\n  inmemory: {}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("bad.yml", []byte(tt.data))
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			if !errors.Is(err, config.ErrConfig) || !strings.Contains(err.Error(), "bad.yml") {
				t.Errorf("error = %v, want ErrConfig naming bad.yml", err)
			}
		})
	}
}

func TestValidateSchedule(t *testing.T) {
	tests := []struct {
		schedule string
		valid    bool
	}{
		{"", true}, // disabled
		{"   ", true},
		{"0 3 * * *", true},
		{"*/15 * * * *", true},
		{"0 3 * * MON-FRI", true},
		{"CRON_TZ=Europe/Berlin 0 3 * * *", true},
		{"TZ=UTC 0 3 * * *", true},
		// cron.ParseStandard accepts descriptors too: @daily, @hourly,
		// @every <duration>. They are documented here as accepted.
		{"@daily", true},
		{"@hourly", true},
		{"@every 6h", true},
		{"@fortnightly", false},
		{"61 * * * *", false},
		{"* 24 * * *", false},
		{"not a cron", false},
		{"0 3 * *", false},     // four fields
		{"0 0 3 * * *", false}, // six fields (seconds) are not standard
		{"CRON_TZ=Nowhere/Atlantis 0 3 * * *", false},
	}
	for _, tt := range tests {
		t.Run(tt.schedule, func(t *testing.T) {
			err := config.ValidateSchedule(tt.schedule)
			if (err == nil) != tt.valid {
				t.Errorf("ValidateSchedule(%q) = %v, want valid=%t", tt.schedule, err, tt.valid)
			}
			// The schedule must mean the same to the GC scheduler.
			if tt.valid && strings.TrimSpace(tt.schedule) != "" {
				if _, err := cron.ParseStandard(tt.schedule); err != nil {
					t.Errorf("cron.ParseStandard(%q) = %v", tt.schedule, err)
				}
			}
		})
	}
}

func TestKeyErrorMessage(t *testing.T) {
	tests := []struct {
		err  *config.KeyError
		want string
	}{
		{&config.KeyError{Key: "dvcr.gc.timeout", Value: "-1m", Reason: "must not be negative"}, `dvcr.gc.timeout: invalid value "-1m": must not be negative`},
		{&config.KeyError{Key: "storage", Reason: "no storage driver configured"}, "storage: no storage driver configured"},
	}
	for _, tt := range tests {
		t.Run(tt.err.Key, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
