package config

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"sigs.k8s.io/yaml"
)

// ValidateSchedule accepts an empty schedule (disabled) or a standard 5-field
// cron expression, optionally prefixed with CRON_TZ=<zone>.
func ValidateSchedule(schedule string) error {
	if strings.TrimSpace(schedule) == "" {
		return nil
	}
	_, err := cron.ParseStandard(schedule)
	return err
}

// defaultSection is the dvcr: section of a file that has none.
func defaultSection() DVCR {
	return DVCR{
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
}

// parseDVCRSection decodes the dvcr: section over the defaults, validates
// it and trims the URLs' trailing slash.
func parseDVCRSection(data []byte) (DVCR, error) {
	out := defaultSection()
	var doc struct {
		DVCR map[string]any `json:"dvcr"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return out, keyError("dvcr", nil, err.Error())
	}
	if err := decodeSection("dvcr", doc.DVCR, reflect.ValueOf(&out).Elem()); err != nil {
		return out, err
	}
	if err := out.Validate(); err != nil {
		return out, err
	}
	up := &out.Provisioning.Upload
	up.InClusterURL = strings.TrimSuffix(up.InClusterURL, "/")
	up.ExternalURL = strings.TrimSuffix(up.ExternalURL, "/")
	return out, nil
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeSection sets the fields of the struct v from m, the map at the
// dotted key prefix, by the fields' json tags. A key no field has, and a
// value where a map is expected, is an unknown key; a key without a value
// keeps the default; a value of the wrong type is refused, naming the key.
// Checks beyond the type are Validate's.
func decodeSection(prefix string, m map[string]any, v reflect.Value) error {
	for _, name := range slices.Sorted(maps.Keys(m)) {
		key, val := prefix+"."+name, m[name]
		f, ok := fieldByKey(v.Type(), name)
		sub, isMap := val.(map[string]any)
		if !ok || (f.Type.Kind() == reflect.Struct && val != nil && !isMap) {
			return keyError(key, nil, "unknown key (known: "+strings.Join(knownKeys("dvcr", reflect.TypeFor[DVCR]()), ", ")+")")
		}
		var err error
		switch {
		case val == nil:
		case f.Type.Kind() == reflect.Struct:
			err = decodeSection(key, sub, v.FieldByIndex(f.Index))
		default:
			err = decodeValue(key, val, v.FieldByIndex(f.Index), f.Tag.Get("want"))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeValue sets a string, bool, whole number or duration ("90s",
// "10m", not negative) from a YAML value.
func decodeValue(key string, val any, f reflect.Value, want string) error {
	var got reflect.Value
	switch {
	case f.Type() == durationType:
		want = cmp.Or(want, `a duration such as "10m" or "30s"`)
		if s, ok := val.(string); ok {
			if d, err := time.ParseDuration(s); err == nil {
				if d < 0 {
					return keyError(key, s, "must not be negative")
				}
				got = reflect.ValueOf(d)
			}
		}
	case f.Kind() == reflect.Int:
		want = cmp.Or(want, "a whole number")
		if n, ok := val.(float64); ok && n == float64(int(n)) { // YAML numbers arrive as float64 through JSON
			got = reflect.ValueOf(int(n))
		}
	default: // string, bool
		want = cmp.Or(want, map[reflect.Kind]string{reflect.String: "a string", reflect.Bool: "true or false"}[f.Kind()])
		if v := reflect.ValueOf(val); v.Type() == f.Type() {
			got = v
		}
	}
	if !got.IsValid() {
		return keyError(key, val, "want "+want)
	}
	f.Set(got)
	return nil
}

// fieldByKey is the field of struct type t whose json tag is key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("json") == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// knownKeys lists the dotted keys of the leaves of struct type t, sorted.
func knownKeys(prefix string, t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		key := prefix + "." + f.Tag.Get("json")
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, knownKeys(key, f.Type)...)
		} else {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return keys
}

// Validate checks what the types of the section's fields do not: the
// schedules, the URLs, the ranges, and the cluster's timing.
func (d DVCR) Validate() error {
	type value[T any] struct {
		key string
		v   T
	}
	for _, s := range []value[string]{{"dvcr.gc.schedule", d.GC.Schedule}, {"dvcr.verify.schedule", d.Verify.Schedule}} {
		if err := ValidateSchedule(s.v); err != nil {
			return keyError(s.key, s.v, err.Error())
		}
	}
	up := d.Provisioning.Upload
	for _, u := range []value[string]{{"dvcr.provisioning.upload.externalURL", up.ExternalURL}, {"dvcr.provisioning.upload.inClusterURL", up.InClusterURL}} {
		if p, err := url.Parse(u.v); u.v != "" && (err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "") {
			return keyError(u.key, u.v, "want an absolute http:// or https:// URL")
		}
	}
	if n := d.Provisioning.Concurrency; n < 1 || n > 256 {
		return keyError("dvcr.provisioning.concurrency", n, "want a whole number from 1 to 256")
	}
	for _, t := range []value[time.Duration]{ // zero means none for the others
		{"dvcr.cluster.leaseDuration", d.Cluster.LeaseDuration}, {"dvcr.cluster.renewDeadline", d.Cluster.RenewDeadline},
		{"dvcr.gc.timeout", d.GC.Timeout}, {"dvcr.provisioning.upload.timeout", up.Timeout},
	} {
		if t.v == 0 {
			return keyError(t.key, t.v, "must be greater than zero")
		}
	}
	return validateCluster(d.Cluster)
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

// String renders the section for logs.
func (d DVCR) String() string {
	return fmt.Sprintf("registryHost=%s adminSocket=%s allowUnmanaged=%t gc.schedule=%q gc.timeout=%s gc.drainTimeout=%s gc.gracePeriod=%s provisioning.enabled=%t provisioning.concurrency=%d cluster.enabled=%t cluster.namespace=%s cluster.leaseDuration=%s cluster.renewDeadline=%s",
		d.RegistryHost, d.AdminSocket, d.Repositories.AllowUnmanaged, d.GC.Schedule, d.GC.Timeout, d.GC.DrainTimeout, d.GC.GracePeriod,
		d.Provisioning.Enabled, d.Provisioning.Concurrency, d.Cluster.Enabled, d.Cluster.Namespace, d.Cluster.LeaseDuration, d.Cluster.RenewDeadline)
}
