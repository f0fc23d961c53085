package config

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"sigs.k8s.io/yaml"
)

// field decodes one key of the dvcr: section into the DVCR struct.
type field func(key string, value any, out *DVCR) error

// sectionFields maps each known key path of the dvcr: section to its decoder.
var sectionFields = map[string]field{
	"dvcr.registryHost":                stringField(func(d *DVCR, s string) { d.RegistryHost = s }),
	"dvcr.adminSocket":                 stringField(func(d *DVCR, s string) { d.AdminSocket = s }),
	"dvcr.repositories.allowUnmanaged": boolField(func(d *DVCR, b bool) { d.Repositories.AllowUnmanaged = b }),
	"dvcr.gc.schedule":                 scheduleField(func(d *DVCR, s string) { d.GC.Schedule = s }),
	"dvcr.gc.timeout":                  durationField(func(d *DVCR) *time.Duration { return &d.GC.Timeout }, false),
	"dvcr.gc.drainTimeout":             durationField(func(d *DVCR) *time.Duration { return &d.GC.DrainTimeout }, true),
	"dvcr.gc.gracePeriod":              durationField(func(d *DVCR) *time.Duration { return &d.GC.GracePeriod }, true),

	"dvcr.verify.schedule": scheduleField(func(d *DVCR, s string) { d.Verify.Schedule = s }),

	"dvcr.provisioning.enabled": boolField(func(d *DVCR, b bool) { d.Provisioning.Enabled = b }),
	"dvcr.provisioning.concurrency": func(key string, v any, d *DVCR) error {
		n, ok := v.(float64) // YAML numbers arrive as float64 through JSON
		if !ok || n != float64(int(n)) || n < 1 || n > 256 {
			return keyError(key, v, "want a whole number from 1 to 256")
		}
		d.Provisioning.Concurrency = int(n)
		return nil
	},
	"dvcr.provisioning.registryURL":         stringField(func(d *DVCR, s string) { d.Provisioning.RegistryURL = s }),
	"dvcr.provisioning.upload.inClusterURL": urlField(func(d *DVCR, s string) { d.Provisioning.Upload.InClusterURL = s }),
	"dvcr.provisioning.upload.externalURL":  urlField(func(d *DVCR, s string) { d.Provisioning.Upload.ExternalURL = s }),
	"dvcr.provisioning.upload.timeout":      durationField(func(d *DVCR) *time.Duration { return &d.Provisioning.Upload.Timeout }, false),

	"dvcr.cluster.enabled":       boolField(func(d *DVCR, b bool) { d.Cluster.Enabled = b }),
	"dvcr.cluster.namespace":     stringField(func(d *DVCR, s string) { d.Cluster.Namespace = s }),
	"dvcr.cluster.leaseDuration": durationField(func(d *DVCR) *time.Duration { return &d.Cluster.LeaseDuration }, false),
	"dvcr.cluster.renewDeadline": durationField(func(d *DVCR) *time.Duration { return &d.Cluster.RenewDeadline }, false),
}

// scheduleField decodes a cron schedule (ValidateSchedule).
func scheduleField(set func(*DVCR, string)) field {
	return func(key string, v any, d *DVCR) error {
		s, ok := v.(string)
		if !ok {
			return keyError(key, v, "want a cron expression as a string")
		}
		if err := ValidateSchedule(s); err != nil {
			return keyError(key, s, err.Error())
		}
		set(d, s)
		return nil
	}
}

// ValidateSchedule accepts an empty schedule (disabled) or a standard 5-field
// cron expression, optionally prefixed with CRON_TZ=<zone>.
func ValidateSchedule(schedule string) error {
	if strings.TrimSpace(schedule) == "" {
		return nil
	}
	_, err := cron.ParseStandard(schedule)
	return err
}

func parseDVCRSection(data []byte) (DVCR, error) {
	out := DVCR{
		RegistryHost: DefaultRegistryHost,
		AdminSocket:  DefaultAdminSocket,
		GC: GC{
			Timeout:      DefaultGCTimeout,
			DrainTimeout: DefaultGCDrainTimeout,
			GracePeriod:  DefaultGCGracePeriod,
		},
		Provisioning: Provisioning{
			Concurrency: DefaultConcurrency,
			Upload:      Upload{Timeout: DefaultUploadTimeout},
		},
		Cluster: Cluster{
			Namespace:     DefaultClusterNamespace,
			LeaseDuration: DefaultLeaseDuration,
			RenewDeadline: DefaultRenewDeadline,
		},
	}
	var doc struct {
		DVCR map[string]any `json:"dvcr"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return out, keyError("dvcr", nil, err.Error())
	}
	leaves := map[string]any{}
	if err := flatten("dvcr", doc.DVCR, leaves); err != nil {
		return out, err
	}
	keys := make([]string, 0, len(leaves))
	for k := range leaves {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		decode, ok := sectionFields[key]
		if !ok {
			return out, keyError(key, nil, "unknown key (known: "+knownKeys()+")")
		}
		if err := decode(key, leaves[key], &out); err != nil {
			return out, err
		}
	}
	return out, validateCluster(out.Cluster)
}

// validateCluster checks what no single key can: the renew deadline must
// leave the others time to see a replica as gone only after it fenced itself.
func validateCluster(c Cluster) error {
	if c.Enabled && c.Namespace == "" {
		return keyError("dvcr.cluster.namespace", "", "must name the namespace of the Leases")
	}
	if c.RenewDeadline >= c.LeaseDuration {
		return keyError("dvcr.cluster.renewDeadline", c.RenewDeadline.String(),
			fmt.Sprintf("must be shorter than dvcr.cluster.leaseDuration (%s): a replica must stop taking writes before the others take it for gone", c.LeaseDuration))
	}
	return nil
}

// flatten turns nested maps into dotted key paths. A map where a value is
// expected, or a value where a map is expected, is left for the field
// decoders or the unknown-key check to report.
func flatten(prefix string, m map[string]any, out map[string]any) error {
	for k, v := range m {
		key := prefix + "." + k
		if v == nil {
			continue // "key:" with no value keeps the default
		}
		if sub, ok := v.(map[string]any); ok && sectionFields[key] == nil {
			if err := flatten(key, sub, out); err != nil {
				return err
			}
			continue
		}
		out[key] = v
	}
	return nil
}

func knownKeys() string {
	keys := make([]string, 0, len(sectionFields))
	for k := range sectionFields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

func stringField(set func(*DVCR, string)) field {
	return func(key string, v any, d *DVCR) error {
		s, ok := v.(string)
		if !ok {
			return keyError(key, v, "want a string")
		}
		set(d, s)
		return nil
	}
}

func boolField(set func(*DVCR, bool)) field {
	return func(key string, v any, d *DVCR) error {
		b, ok := v.(bool)
		if !ok {
			return keyError(key, v, "want true or false")
		}
		set(d, b)
		return nil
	}
}

// urlField accepts an empty string or an absolute http(s) URL.
func urlField(set func(*DVCR, string)) field {
	return func(key string, v any, d *DVCR) error {
		s, ok := v.(string)
		if !ok {
			return keyError(key, v, "want a URL string")
		}
		if s != "" {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return keyError(key, s, "want an absolute http:// or https:// URL")
			}
		}
		set(d, strings.TrimSuffix(s, "/"))
		return nil
	}
}

// durationField decodes a Go duration string ("90s", "10m"). Zero is allowed
// only where it means "none".
func durationField(target func(*DVCR) *time.Duration, zeroAllowed bool) field {
	return func(key string, v any, d *DVCR) error {
		s, ok := v.(string)
		if !ok {
			return keyError(key, v, `want a duration such as "10m" or "30s"`)
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			return keyError(key, s, `want a duration such as "10m" or "30s"`)
		}
		if dur < 0 {
			return keyError(key, s, "must not be negative")
		}
		if dur == 0 && !zeroAllowed {
			return keyError(key, s, "must be greater than zero")
		}
		*target(d) = dur
		return nil
	}
}

// String renders the section for logs.
func (d DVCR) String() string {
	return fmt.Sprintf("registryHost=%s adminSocket=%s allowUnmanaged=%t gc.schedule=%q gc.timeout=%s gc.drainTimeout=%s gc.gracePeriod=%s provisioning.enabled=%t provisioning.concurrency=%d cluster.enabled=%t cluster.namespace=%s cluster.leaseDuration=%s cluster.renewDeadline=%s",
		d.RegistryHost, d.AdminSocket, d.Repositories.AllowUnmanaged, d.GC.Schedule, d.GC.Timeout, d.GC.DrainTimeout, d.GC.GracePeriod,
		d.Provisioning.Enabled, d.Provisioning.Concurrency, d.Cluster.Enabled, d.Cluster.Namespace, d.Cluster.LeaseDuration, d.Cluster.RenewDeadline)
}
