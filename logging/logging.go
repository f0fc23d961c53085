// Package logging builds the one *slog.Logger of a DVCR command: text lines
// in the shape the commands have always written ("dvcr serve: <msg>", then
// key=value attributes, if any) or JSON records ({"time","level","msg",...}),
// chosen by the --log-format flag.
package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Format is the value of --log-format.
type Format string

// The formats of --log-format.
const (
	Text Format = "text"
	JSON Format = "json"
)

// ParseFormat checks a --log-format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Text, JSON:
		return f, nil
	}
	return "", fmt.Errorf("--log-format %q: want text or json", s)
}

// New returns a logger writing to w in format; prefix starts every text line
// (e.g. "dvcr serve: "), JSON records have none. Durations are written as
// "1.5s" in both. Records below level are dropped (nil: Info).
func New(w io.Writer, format Format, prefix string, level slog.Leveler) *slog.Logger {
	if format == JSON {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationString}))
	}
	return slog.New(&textHandler{out: &lockedWriter{w: w}, prefix: prefix, level: level})
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

// textHandler writes "<prefix><msg>[ key=value]...\n"; no time, no level,
// as the lines were before slog.
type textHandler struct {
	out    *lockedWriter
	prefix string
	level  slog.Leveler
	attrs  []byte // preformatted " key=value" of WithAttrs
	group  string // "a.b." of WithGroup
	stamp  bool   // the record's time (UTC, RFC 3339) and ": " after prefix
}

func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool {
	min := slog.LevelInfo
	if h.level != nil {
		min = h.level.Level()
	}
	return l >= min
}

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString(h.prefix)
	if h.stamp {
		b.WriteByte(' ')
		b.WriteString(r.Time.UTC().Format(time.RFC3339))
		b.WriteString(": ")
	}
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
	if h, ok := l.Handler().(*textHandler); ok {
		c := *h
		c.prefix, c.stamp = "dvcr "+name, stamped
		if !stamped {
			c.prefix += ": "
		}
		return slog.New(&c)
	}
	return l.With("component", name)
}
