package dvcrtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/logging"
	"github.com/dvcr/dvcr/registry"
)

// NewRegistry builds the real registry in process on storage, the
// storage driver's section in YAML flow form ("filesystem: {rootdirectory:
// /x}", "inmemory: {}"); extra is top-level YAML appended to the config
// (e.g. "dvcr:\n  gc: {gracePeriod: 0s}\n"). It is closed when the test
// ends; serve its Handler with httptest.
func NewRegistry(t testing.TB, storage, extra string) *registry.Server {
	t.Helper()
	yaml := fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  %s
  cache: {blobdescriptor: inmemory}
  delete: {enabled: true}
http: {addr: 127.0.0.1:0}
%s`, storage, extra)
	cfg, err := config.Parse("test", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := registry.NewServer(context.Background(), cfg, Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// Logger is the logger of a registry in a test process: text lines on
// stderr, as a test's own registry wrote them before it took a logger.
func Logger() *slog.Logger {
	return logging.New(os.Stderr, logging.Text, "registry (test): ", nil)
}
