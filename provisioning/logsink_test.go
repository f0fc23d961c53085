package provisioning

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"

	"github.com/dvcr/dvcr/logging"
)

// TestLoggerErrorsOnly: controller-runtime's errors reach the server's log
// as "provisioning: " records, its Info chatter does not.
func TestLoggerErrorsOnly(t *testing.T) {
	var out bytes.Buffer
	log := newLogger(logging.New(&out, logging.Text, "dvcr serve: ", slog.LevelDebug)).WithName("controller").WithValues("controller", "cvi")
	log.Info("Starting workers", "worker count", 4)
	log.V(1).Info("chatter")
	log.Error(errors.New("conflict"), "Reconciler error", "name", "ubuntu")
	want := "dvcr serve: provisioning: Reconciler error controller=cvi logger=controller err=conflict name=ubuntu\n"
	if out.String() != want {
		t.Errorf("%q, want %q", out.String(), want)
	}
}
