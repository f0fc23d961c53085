package logging

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"

	"github.com/sirupsen/logrus"
)

// RouteLogrus sends what logrus's standard logger is given (the embedded
// distribution registry logs through it: request lines, storage errors) to
// l instead of logrus's own output.
// Logrus is left to drop what is below level, so that a dropped request
// line costs nothing. Logrus is process-wide: the last call wins.
func RouteLogrus(l *slog.Logger, level slog.Level) {
	std := logrus.StandardLogger()
	std.SetLevel(logrusLevel(level))
	std.SetFormatter(silent{})
	std.SetOutput(io.Discard)
	std.ReplaceHooks(logrus.LevelHooks{})
	std.AddHook(&logrusHook{logger: l})
}

// logrusLevel is the logrus level that lets through what slog's level does.
func logrusLevel(l slog.Level) logrus.Level {
	switch {
	case l >= slog.LevelError:
		return logrus.ErrorLevel
	case l >= slog.LevelWarn:
		return logrus.WarnLevel
	case l >= slog.LevelInfo:
		return logrus.InfoLevel
	}
	return logrus.DebugLevel
}

// slogLevel maps a logrus entry's level; panic and fatal are errors to us
// (logrus itself still panics or exits after the hooks ran).
func slogLevel(l logrus.Level) slog.Level {
	switch l {
	case logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel:
		return slog.LevelError
	case logrus.WarnLevel:
		return slog.LevelWarn
	case logrus.InfoLevel:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// silent formats nothing: the hook has sent the entry on.
type silent struct{}

func (silent) Format(*logrus.Entry) ([]byte, error) { return nil, nil }

type logrusHook struct{ logger *slog.Logger }

func (h *logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

// Fire turns the entry into a record: its time and message, its fields
// sorted by name, logrus's "error" field named "err" as everywhere else.
func (h *logrusHook) Fire(e *logrus.Entry) error {
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	level := slogLevel(e.Level)
	handler := h.logger.Handler()
	if !handler.Enabled(ctx, level) {
		return nil
	}
	r := slog.NewRecord(e.Time, level, e.Message, 0)
	for _, k := range slices.Sorted(maps.Keys(e.Data)) {
		key := k
		if k == logrus.ErrorKey {
			key = "err"
		}
		r.AddAttrs(slog.Any(key, e.Data[k]))
	}
	return handler.Handle(ctx, r)
}
