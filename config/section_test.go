package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestEveryFieldIsAKey: each field of the dvcr: section has a json tag,
// the key decodeSection reads it from; a field without one could never be
// set from the file.
func TestEveryFieldIsAKey(t *testing.T) {
	keys := knownKeys("dvcr", reflect.TypeFor[DVCR]())
	if len(keys) != 18 {
		t.Errorf("%d keys, want 18: %v", len(keys), keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "..") || strings.HasSuffix(k, ".") {
			t.Errorf("key %q: a field without a json tag", k)
		}
	}
}
