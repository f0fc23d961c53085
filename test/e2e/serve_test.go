package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestServeRejectsInvalidConfig: the real binary exits non-zero at start,
// naming the key that holds the bad value.
func TestServeRejectsInvalidConfig(t *testing.T) {
	bin := dvcrtest.Binary(t, "dvcr")
	base := "version: 0.1\nstorage: {filesystem: {rootdirectory: " + t.TempDir() + "}}\nhttp: {addr: 127.0.0.1:0}\n"
	cases := []struct{ name, yaml, key string }{
		{"bad cron", base + "dvcr: {gc: {schedule: \"61 * * * *\"}}\n", "dvcr.gc.schedule"},
		{"bad verify cron", base + "dvcr: {verify: {schedule: \"every sunday\"}}\n", "dvcr.verify.schedule"},
		{"negative duration", base + "dvcr: {gc: {gracePeriod: -1h}}\n", "dvcr.gc.gracePeriod"},
		{"unknown key", base + "dvcr: {gc: {shedule: \"@daily\"}}\n", "dvcr.gc.shedule"},
		{"unknown driver", "version: 0.1\nstorage: {foo: {}}\nhttp: {addr: 127.0.0.1:0}\n", "storage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "config.yml")
			if err := os.WriteFile(cfg, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "serve", "--config", cfg).CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("dvcr serve with %s: %v (want a non-zero exit at start)\n%s", tc.name, err, out)
			}
			if !strings.Contains(string(out), tc.key) {
				t.Fatalf("message does not name %s:\n%s", tc.key, out)
			}
		})
	}
}

// TestServeGracefulShutdown: on SIGTERM an upload in flight finishes and
// the process exits cleanly.
func TestServeGracefulShutdown(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	upload := dvcrtest.StartSlowUpload(t, srv.URL(), "vd/default/disk")
	time.Sleep(200 * time.Millisecond) // the PUT is being served
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if status := upload.Finish(); status != http.StatusCreated {
		t.Fatalf("upload in flight at SIGTERM: %d, want 201\n%s", status, srv.Stderr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Wait(ctx); err != nil {
		t.Fatalf("dvcr serve after SIGTERM: %v\n%s", err, srv.Stderr())
	}
}
