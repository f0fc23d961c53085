package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestRouteLogrus: logrus's lines (the embedded registry's) arrive as
// records of the logger, fields sorted, "error" named "err", below the
// level dropped, nothing written by logrus itself.
func TestRouteLogrus(t *testing.T) {
	var out bytes.Buffer
	l := Component(New(&out, JSON, "", nil), "registry", true)
	RouteLogrus(l, slog.LevelWarn)
	t.Cleanup(func() {
		logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{})
		logrus.SetOutput(os.Stderr)
	})
	logrus.WithField("vars.name", "cvi/a").Info("dropped: below warn")
	logrus.WithError(errors.New("disk full")).WithField("http.request.method", "PUT").Error("response completed with error")
	var rec map[string]any
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil {
		t.Fatalf("%q: %v", out.String(), err)
	}
	want := map[string]any{"level": "ERROR", "msg": "response completed with error", "component": "registry",
		"err": "disk full", "http.request.method": "PUT"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (record %v)", k, rec[k], v, rec)
		}
	}
}
