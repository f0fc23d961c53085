package provisioning

import (
	"context"
	"log/slog"

	"github.com/go-logr/logr"
)

// newLogger is the controller's logr.Logger: controller-runtime's errors go
// to logger as "provisioning: <msg>" records, the error and the key/values
// as attributes; its informational chatter (workers starting and stopping)
// does not.
func newLogger(logger *slog.Logger) logr.Logger {
	if logger == nil {
		return logr.Discard()
	}
	return logr.FromSlogHandler(errorsOnly{logger.Handler()})
}

// errorsOnly passes on the records of level Error and above, their message
// prefixed "provisioning: ".
type errorsOnly struct{ h slog.Handler }

func (e errorsOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError && e.h.Enabled(ctx, l)
}

func (e errorsOnly) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return nil
	}
	c := slog.NewRecord(r.Time, r.Level, "provisioning: "+r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		c.AddAttrs(a)
		return true
	})
	return e.h.Handle(ctx, c)
}

func (e errorsOnly) WithAttrs(as []slog.Attr) slog.Handler {
	return errorsOnly{e.h.WithAttrs(as)}
}

func (e errorsOnly) WithGroup(name string) slog.Handler {
	return errorsOnly{e.h.WithGroup(name)}
}
