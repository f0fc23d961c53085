package provisioning

import (
	"fmt"
	"io"
	"strings"

	"github.com/go-logr/logr"
)

// errorSink is the controller's logr sink: controller-runtime's errors go to
// the server's log as plain lines; its informational chatter (workers
// starting and stopping) does not.
type errorSink struct {
	w      io.Writer
	name   string
	values []any
}

func newLogger(w io.Writer) logr.Logger {
	if w == nil {
		return logr.Discard()
	}
	return logr.New(&errorSink{w: w})
}

func (s *errorSink) Init(logr.RuntimeInfo)    {}
func (s *errorSink) Enabled(int) bool         { return false }
func (s *errorSink) Info(int, string, ...any) {}
func (s *errorSink) WithName(name string) logr.LogSink {
	c := *s
	c.name = strings.TrimPrefix(s.name+"."+name, ".")
	return &c
}
func (s *errorSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(append([]any{}, s.values...), kv...)
	return &c
}
func (s *errorSink) Error(err error, msg string, kv ...any) {
	fmt.Fprintf(s.w, "dvcr serve: provisioning: %s: %v %v\n", msg, err, append(append([]any{}, s.values...), kv...))
}
