package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestProvisionFailures: HTTP sources that cannot give an image say why.
// An unreachable server is a failure that passes: the image stays
// Provisioning (reason ProvisioningRetrying, never Failed) and is retried.
// A 404 needs a person: Failed, retried still (the message says so); a
// checksum mismatch and a refused image are Failed and not retried: the
// source is not asked again.
func TestProvisionFailures(t *testing.T) {
	e := newProvEnv(t, "")
	web := newFileServer(t, 0)
	dir := t.TempDir()
	good := readFile(t, dvcrtest.MakeDiskFile(t, dir, "good", "qcow2", "16M", 1<<20))
	qemuImg(t, "create", "-f", "qcow2", filepath.Join(dir, "base.qcow2"), "16M")
	child := filepath.Join(dir, "child.qcow2")
	qemuImg(t, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", child)

	cases := []struct {
		name, file, url, checksum string
		want                      []string
		retried                   bool
		phase, reason             string
	}{
		{name: "unreachable", url: "http://" + closedPort(t) + "/disk.qcow2", want: []string{"connection refused"}, retried: true, phase: "Provisioning", reason: "ProvisioningRetrying"},
		{name: "not-found", url: web.URL + "/missing.qcow2", file: "missing.qcow2", want: []string{"404", "Check that the source exists"}, retried: true},
		{name: "checksum", file: "good.qcow2", checksum: strings.Repeat("0", 64), want: []string{"checksum mismatch", "sha256"}},
		{name: "backing-file", file: "child.qcow2", want: []string{"backing file", "base.qcow2"}},
	}
	web.add("good.qcow2", good)
	web.add("child.qcow2", readFile(t, child))
	for _, c := range cases {
		url := c.url
		if url == "" {
			url = web.URL + "/" + c.file
		}
		manifest := httpCVI(c.name, url)
		if c.checksum != "" {
			manifest += fmt.Sprintf("      checksum:\n        sha256: %q\n", c.checksum)
		}
		e.apply(t, manifest)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			phase, want := "Failed", "ProvisioningFailed"
			if c.phase != "" {
				phase, want = c.phase, c.reason
			}
			obj := e.waitFor(t, "", c.name, phase+" with reason "+want, time.Minute, func(o *unstructured.Unstructured) bool {
				if p := status(o, "phase"); p == "Failed" && phase != "Failed" {
					t.Fatalf("%s: Failed for a failure that passes: %s", c.name, conditions(o))
				}
				reason, _ := condition(o, "Ready")
				return status(o, "phase") == phase && reason == want
			})
			_, msg := condition(obj, "Ready")
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Ready message does not say %q: %s", w, msg)
				}
			}
			if got := strings.Contains(msg, "retrying in"); got != c.retried {
				t.Errorf("message says it retries: %t, want %t: %s", got, c.retried, msg)
			}
			assertNoTag(t, e.srv, "cvi/"+c.name)
		})
	}
	t.Run("permanent failures are not retried", func(t *testing.T) {
		before := map[string]int{}
		for _, c := range cases {
			if !c.retried {
				before[c.name] = web.hits(c.file)
			}
		}
		time.Sleep(15 * time.Second) // longer than the first retry's 10 s
		for _, c := range cases {
			if c.retried {
				continue
			}
			obj := e.image(t, "", c.name)
			if st := status(obj, "phase"); st != "Failed" {
				t.Errorf("%s: phase %q 15 s after a permanent failure, want Failed", c.name, st)
			}
			if n := web.hits(c.file); n != before[c.name] || n == 0 {
				t.Errorf("%s: %d GETs of the source before, %d after 15 s: retried", c.name, before[c.name], n)
			}
		}
		if n := web.hits("missing.qcow2"); n < 2 {
			t.Errorf("the 404 source was asked %d times in 15 s, want a retry", n)
		}
	})
}
