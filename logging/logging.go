// Package logging builds the one *slog.Logger of a DVCR command (dvcr serve,
// dvcr import/export, dvcr-cleaner): text lines in the shape the commands have
// always written ("dvcr serve: <msg>", then key=value attributes, if any) or
// JSON records ({"time","level","msg",...}), chosen by the --log-format flag.
// The embedded registry's logrus lines are routed into the same logger
// (RouteLogrus), so a process writes one format.
//
// Attribute names are shared by every command, so that one query finds a
// thing in all of them:
//
//	err         an error (never "error")
//	component   the part of a process a JSON record comes from; text lines
//	            name it in their head instead ("dvcr gc (schedule) <time>: ")
//	run         a gc or verify run's ID
//	replica     a replica's name (cluster mode)
//	upload      an upload's token or directory
//	schedule    a cron schedule
//	phase       a transfer's phase (import, export)
//	bytes,total a byte count and its total (-1: unknown)
//	repository  a repository path (cvi/<name>, vi/<ns>/<name>)
package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/spf13/pflag"
)

// Format is the value of --log-format.
type Format string

// The formats of --log-format.
const (
	Text Format = "text"
	JSON Format = "json"
)

// ParseFormat checks a --log-format value; pflag's error around it names
// the flag and the value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Text, JSON:
		return f, nil
	}
	return "", errors.New("want text or json")
}

// String, Set and Type make *Format a flag value (pflag.Value).
func (f *Format) String() string { return string(*f) }

// Set parses a --log-format value.
func (f *Format) Set(s string) error {
	v, err := ParseFormat(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Type names the values in --help.
func (f *Format) Type() string { return "text|json" }

// AddFlag registers --log-format on fs into f (text unless set); textShape
// shows what a text line looks like, for --help.
func AddFlag(fs *pflag.FlagSet, f *Format, textShape string) {
	if *f == "" {
		*f = Text
	}
	fs.Var(f, "log-format", fmt.Sprintf("log format on stderr: text (%s) or json", textShape))
}

// FromFormatter is the format the registry config's log.formatter asks for
// (json and logstash: JSON; text or unset: text), used when --log-format is
// not given, so that the one key of the file sets the whole process.
func FromFormatter(formatter string) Format {
	switch formatter {
	case "json", "logstash":
		return JSON
	}
	return Text
}

// ParseLevel is the slog level of a log.level value (error, warn, info,
// debug; logrus's names, as the registry config takes them). Unknown or
// empty: info.
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "panic", "fatal", "error":
		return slog.LevelError
	case "warn", "warning":
		return slog.LevelWarn
	case "debug", "trace":
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// New returns a logger writing to w in format; prefix starts every text line
// (e.g. "dvcr serve: "), JSON records have none. Durations are written as
// "1.5s" in both. Records below level are dropped (nil: Info).
func New(w io.Writer, format Format, prefix string, level slog.Leveler) *slog.Logger {
	if level == nil {
		level = slog.LevelInfo
	}
	var h slog.Handler = &textHandler{out: &lockedWriter{w: w}, head: fixedHead(prefix)}
	if format == JSON {
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: everything, ReplaceAttr: durationString})
	}
	return slog.New(leveled{Handler: h, min: level})
}

// everything is below any level a record has: the formatting handlers
// take all, leveled decides.
const everything = slog.Level(-1 << 10)

// WithLevel returns l dropping what is below level instead of l's level
// (the registry's lines follow the config's log.level, DVCR's do not).
func WithLevel(l *slog.Logger, level slog.Leveler) *slog.Logger {
	if h, ok := l.Handler().(leveled); ok {
		return slog.New(leveled{Handler: h.Handler, min: level})
	}
	return l
}

// leveled drops records below min; the handler it wraps formats.
type leveled struct {
	slog.Handler
	min slog.Leveler
}

func (h leveled) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min.Level() }

func (h leveled) WithAttrs(as []slog.Attr) slog.Handler {
	return leveled{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h leveled) WithGroup(name string) slog.Handler {
	return leveled{Handler: h.Handler.WithGroup(name), min: h.min}
}

// durationString writes durations as in the text lines ("1.5s"), not as
// nanoseconds.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// textHandler writes "<head><msg>[ key=value]...\n", as the lines were
// before slog: no level (JSON records have it), no time unless the head has
// one.
type textHandler struct {
	out   *lockedWriter
	head  func(time.Time) string // what starts a line, e.g. "dvcr serve: "
	attrs []byte                 // preformatted " key=value" of WithAttrs
	group string                 // "a.b." of WithGroup
}

// fixedHead is a head without the record's time.
func fixedHead(prefix string) func(time.Time) string {
	return func(time.Time) string { return prefix }
}

func (h *textHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString(h.head(r.Time))
	b.WriteString(r.Message)
	b.Write(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	_, err := h.out.Write(b.Bytes())
	return err
}

func (h *textHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	c := *h
	b := bytes.NewBuffer(append([]byte(nil), h.attrs...))
	for _, a := range as {
		appendAttr(b, h.group, a)
	}
	c.attrs = b.Bytes()
	return &c
}

func (h *textHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	return &c
}

func appendAttr(b *bytes.Buffer, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, g, ga)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	var s string
	switch a.Value.Kind() {
	case slog.KindTime:
		s = a.Value.Time().Format(time.RFC3339)
	case slog.KindDuration:
		s = a.Value.Duration().String()
	default:
		s = a.Value.String()
	}
	if needsQuote(s) {
		s = strconv.Quote(s)
	}
	b.WriteString(s)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return r == '=' || r == '"' || unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) >= 0
}

// Component returns l for a part of the command that names itself in its
// text lines, as "dvcr <name>: <msg>" (stamped: "dvcr <name> <time>: <msg>")
// instead of l's prefix; JSON records get the attribute component=<name>.
func Component(l *slog.Logger, name string, stamped bool) *slog.Logger {
	head := fixedHead("dvcr " + name + ": ")
	if stamped {
		head = func(t time.Time) string { return "dvcr " + name + " " + t.UTC().Format(time.RFC3339) + ": " }
	}
	return withHead(l, head, name)
}

// Clocked returns l for the progress lines of a command run by a person
// (dvcr-cleaner gc run): text lines start with the local time of day,
// "15:04:05 <msg>"; JSON records get component=<name>.
func Clocked(l *slog.Logger, name string) *slog.Logger {
	return withHead(l, func(t time.Time) string { return t.Format(time.TimeOnly) + " " }, name)
}

func withHead(l *slog.Logger, head func(time.Time) string, component string) *slog.Logger {
	if lh, ok := l.Handler().(leveled); ok {
		if h, ok := lh.Handler.(*textHandler); ok {
			c := *h
			c.head = head
			return slog.New(leveled{Handler: &c, min: lh.min})
		}
	}
	return l.With("component", component)
}
