package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestServeLogsOneFormat: everything dvcr serve logs (its own lines, the
// embedded registry's, the access log) comes out in one format, chosen by
// --log-format or, without it, by the config's log.formatter; the config's
// log.fields reach the registry's records.
func TestServeLogsOneFormat(t *testing.T) {
	const withAccess = "log:\n  level: info\n  fields: {service: registry}\n"
	for _, c := range []struct {
		name string
		log  string
		args []string
		json bool
	}{
		{"text by default", withAccess, nil, false},
		{"json by flag", withAccess, []string{"--log-format", "json"}, true},
		{"json by log.formatter", withAccess + "  formatter: json\n", nil, true},
		{"the flag wins over log.formatter", withAccess + "  formatter: logstash\n", []string{"--log-format", "text"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{Log: c.log, Args: c.args})
			d := dvcrtest.MakeDisk(t, "disk", "qcow2", "8M", 1<<20)
			dvcrtest.Push(t, srv, d, "cvi/logged", "latest")
			resp, err := http.Get(srv.URL() + "/v2/cvi/logged/manifests/absent")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			srv.Stop(t)
			lines := strings.Split(strings.TrimSpace(srv.Stderr()), "\n")
			if c.json {
				checkJSONLog(t, lines)
			} else {
				checkTextLog(t, lines)
			}
		})
	}
}

// checkJSONLog: every line is a record; the three sources are there.
func checkJSONLog(t *testing.T, lines []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON record: %q", line)
		}
		msg, _ := rec["msg"].(string)
		switch {
		case strings.HasPrefix(msg, "registry listening on"):
			seen["serve"] = seen["serve"] || rec["component"] == nil
		case rec["component"] == "registry" && rec["http.request.method"] != nil:
			seen["registry"] = seen["registry"] || rec["service"] == "registry"
		case rec["component"] == "access" && strings.Contains(msg, "/manifests/absent 404"):
			seen["access"] = rec["bytes"] != nil && rec["took"] != nil && rec["service"] == nil
		}
	}
	for _, k := range []string{"serve", "registry", "access"} {
		if !seen[k] {
			t.Errorf("no (or a wrong) %s record in:\n%s", k, strings.Join(lines, "\n"))
		}
	}
}

// checkTextLog: every line has a DVCR head, none is logrus's or Apache's.
func checkTextLog(t *testing.T, lines []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "dvcr serve: registry listening on"):
			seen["serve"] = true
		case strings.HasPrefix(line, "dvcr registry ") && strings.Contains(line, "http.request.method="):
			seen["registry"] = seen["registry"] || strings.Contains(line, " service=registry")
		case strings.HasPrefix(line, "dvcr access ") && strings.Contains(line, "/manifests/absent 404 "):
			seen["access"] = true
		case strings.HasPrefix(line, "dvcr "):
		default:
			t.Errorf("a line without DVCR's head: %q", line)
		}
	}
	for _, k := range []string{"serve", "registry", "access"} {
		if !seen[k] {
			t.Errorf("no (or a wrong) %s line in:\n%s", k, strings.Join(lines, "\n"))
		}
	}
}
