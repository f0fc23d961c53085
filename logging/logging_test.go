package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLoggerFormats(t *testing.T) {
	cases := []struct {
		name string
		log  func(l *slog.Logger)
		text string         // the whole text line
		json map[string]any // fields beyond time, level, msg
		msg  string
	}{
		{
			name: "message only",
			log:  func(l *slog.Logger) { l.Info("registry listening on 127.0.0.1:5000 (config: x.yml)") },
			text: "dvcr serve: registry listening on 127.0.0.1:5000 (config: x.yml)\n",
			msg:  "registry listening on 127.0.0.1:5000 (config: x.yml)",
		},
		{
			name: "attributes",
			log: func(l *slog.Logger) {
				l.Info("upload: registered", "token", "ab12cd34", "bytes", 42, "err", errors.New("disk full"), "took", 1500*time.Millisecond)
			},
			text: `dvcr serve: upload: registered token=ab12cd34 bytes=42 err="disk full" took=1.5s` + "\n",
			json: map[string]any{"token": "ab12cd34", "bytes": 42.0, "err": "disk full", "took": "1.5s"},
			msg:  "upload: registered",
		},
		{
			name: "With and groups",
			log: func(l *slog.Logger) {
				l.With("replica", "r-1").WithGroup("gc").Info("window", "run", "x=y", slog.Group("lease", "name", ""))
			},
			text: `dvcr serve: window replica=r-1 gc.run="x=y" gc.lease.name=""` + "\n",
			json: map[string]any{"replica": "r-1", "gc": map[string]any{"run": "x=y", "lease": map[string]any{"name": ""}}},
			msg:  "window",
		},
		{
			name: "below the level",
			log:  func(l *slog.Logger) { l.Debug("not shown") },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var text, js bytes.Buffer
			c.log(New(&text, Text, "dvcr serve: ", nil))
			c.log(New(&js, JSON, "dvcr serve: ", nil))
			if text.String() != c.text {
				t.Errorf("text: %q, want %q", text.String(), c.text)
			}
			if c.msg == "" {
				if js.Len() != 0 {
					t.Errorf("json: %q, want nothing", js.String())
				}
				return
			}
			var rec map[string]any
			if err := json.Unmarshal(js.Bytes(), &rec); err != nil {
				t.Fatalf("json %q: %v", js.String(), err)
			}
			if rec["msg"] != c.msg || rec["level"] != "INFO" || rec["time"] == nil {
				t.Errorf("json %v: want msg %q, level INFO and a time", rec, c.msg)
			}
			delete(rec, "msg")
			delete(rec, "level")
			delete(rec, "time")
			if fmt.Sprint(rec) != fmt.Sprint(c.json) && !(len(rec) == 0 && len(c.json) == 0) {
				t.Errorf("json fields %v, want %v", rec, c.json)
			}
		})
	}
}

func TestComponent(t *testing.T) {
	at := time.Date(2026, 12, 4, 22, 0, 0, 0, time.FixedZone("x", 3600))
	for _, c := range []struct {
		name    string
		stamped bool
		format  Format
		want    string
	}{
		{"verify (metrics)", false, Text, "dvcr verify (metrics): the recorded results are readable again n=1\n"},
		{"gc (schedule)", true, Text, "dvcr gc (schedule) 2026-12-04T21:00:00Z: the recorded results are readable again n=1\n"},
		{"gc (schedule)", true, JSON, `{"time":"2026-12-04T22:00:00+01:00","level":"INFO","msg":"the recorded results are readable again","component":"gc (schedule)","n":1}` + "\n"},
	} {
		var out bytes.Buffer
		l := Component(New(&out, c.format, "dvcr serve: ", nil), c.name, c.stamped)
		r := slog.NewRecord(at, slog.LevelInfo, "the recorded results are readable again", 0)
		r.AddAttrs(slog.Int("n", 1))
		if err := l.Handler().Handle(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		if out.String() != c.want {
			t.Errorf("%s %s: %q, want %q", c.format, c.name, out.String(), c.want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{{"text", true}, {"json", true}, {"", false}, {"JSON", false}, {"logfmt", false}} {
		if _, err := ParseFormat(c.in); (err == nil) != c.ok {
			t.Errorf("ParseFormat(%q): %v", c.in, err)
		}
	}
}

func TestLevels(t *testing.T) {
	var out bytes.Buffer
	l := New(&out, Text, "dvcr serve: ", nil)
	l.Warn("verify metrics not restored", "err", "no bucket")
	l.Error("gc: recovering failed")
	l.Debug("dropped at info")
	WithLevel(l, slog.LevelDebug).Debug("kept at debug")
	WithLevel(l, slog.LevelError).Warn("dropped at error")
	want := "dvcr serve: verify metrics not restored err=\"no bucket\"\n" +
		"dvcr serve: gc: recovering failed\n" +
		"dvcr serve: kept at debug\n"
	if out.String() != want {
		t.Errorf("%q, want %q", out.String(), want)
	}
}

func TestClocked(t *testing.T) {
	at := time.Date(2026, 12, 4, 22, 1, 2, 0, time.Local)
	for _, c := range []struct {
		format Format
		want   string
	}{
		{Text, "22:01:02 marking: 3 of 10 repositories\n"},
		{JSON, `"msg":"marking: 3 of 10 repositories","component":"gc"}`},
	} {
		var out bytes.Buffer
		l := Clocked(New(&out, c.format, "dvcr-cleaner: ", nil), "gc")
		if err := l.Handler().Handle(t.Context(), slog.NewRecord(at, slog.LevelInfo, "marking: 3 of 10 repositories", 0)); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte(strings.TrimSuffix(c.want, "\n"))) {
			t.Errorf("%s: %q, want %q", c.format, out.String(), c.want)
		}
	}
}

func TestFormatAndLevelOfTheConfig(t *testing.T) {
	for in, want := range map[string]Format{"": Text, "text": Text, "json": JSON, "logstash": JSON} {
		if got := FromFormatter(in); got != want {
			t.Errorf("FromFormatter(%q) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]slog.Level{"": slog.LevelInfo, "info": slog.LevelInfo, "debug": slog.LevelDebug,
		"warn": slog.LevelWarn, "error": slog.LevelError, "fatal": slog.LevelError} {
		if got := ParseLevel(in); got != want {
			t.Errorf("ParseLevel(%q) = %s, want %s", in, got, want)
		}
	}
}
