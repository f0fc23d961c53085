package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestProvisionFromHTTP: the seed's "Создание образа с HTTP-сервера" — a
// ClusterVirtualImage from an HTTP URL goes Provisioning with rising
// progress, then Ready 100%, with format, sizes and a pullable image.
func TestProvisionFromHTTP(t *testing.T) {
	e := newProvEnv(t, "")
	disk := dvcrtest.MakeDiskFile(t, t.TempDir(), "noble", "qcow2", "256M", 12<<20)
	data := readFile(t, disk)
	web := newFileServer(t, 2<<20) // ~6 s of transfer: the progress shows
	url := web.add("noble-server-cloudimg-amd64.img", data)

	e.apply(t, fmt.Sprintf(`apiVersion: virtualization.deckhouse.io/v1alpha2
kind: ClusterVirtualImage
metadata:
  name: ubuntu-24-04
spec:
  dataSource:
    type: HTTP
    http:
      url: %s
`, url))
	stop := e.watch(t, "cvi", "ubuntu-24-04")
	obj := e.waitPhase(t, "", "ubuntu-24-04", "Ready", 2*time.Minute)
	time.Sleep(500 * time.Millisecond) // the watch prints the last event
	watched := stop()

	checks := map[string]string{
		"progress":           "100%",
		"format":             "qcow2",
		"cdrom":              "false",
		"size.unpackedBytes": strconv.Itoa(256 << 20),
		"size.unpacked":      "256.0MiB",
		"size.storedBytes":   "",
		"target.registryURL": "dvcr.test/cvi/ubuntu-24-04:latest",
		"observedGeneration": "1",
	}
	for path, want := range checks {
		got := status(obj, strings.Split(path, ".")...)
		if want != "" && got != want {
			t.Errorf("status.%s = %q, want %q", path, got, want)
		}
	}
	if stored, _ := strconv.Atoi(status(obj, "size", "storedBytes")); stored <= len(data) || stored > len(data)+8192 {
		t.Errorf("status.size.storedBytes %d for a %d-byte file", stored, len(data))
	}
	if reason, _ := condition(obj, "Ready"); reason != "Ready" {
		t.Errorf("conditions: %s", conditions(obj))
	}
	assertWatchedProgress(t, watched)
	_, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/ubuntu-24-04"))
	if !bytes.Equal(got, data) {
		t.Fatal("the image in DVCR differs from the HTTP source")
	}
	out, err := e.kubectl(t, "", "get", "cvi")
	if err != nil || !regexp.MustCompile(`ubuntu-24-04\s+Ready\s+false\s+100%`).MatchString(out) {
		t.Errorf("kubectl get cvi: %v\n%s", err, out)
	}
	events, err := e.kubectl(t, "", "get", "events", "-A", "--field-selector", "involvedObject.name=ubuntu-24-04")
	if err != nil || !strings.Contains(events, "Importing from") || !strings.Contains(events, "Image ready") {
		t.Errorf("events of the image: %v\n%s", err, events)
	}
}

// assertWatchedProgress: `kubectl get -w` showed Provisioning with progress
// that rises and never falls, then Ready 100%.
func assertWatchedProgress(t *testing.T, watched string) {
	t.Helper()
	line := regexp.MustCompile(`(?m)^ubuntu-24-04\s+(\w+)\s+(?:true|false)?\s*([0-9.]+%)?`)
	var last float64
	var provisioning, rising int
	ready := false
	for _, m := range line.FindAllStringSubmatch(watched, -1) {
		switch m[1] {
		case "Provisioning":
			provisioning++
			if m[2] == "" {
				continue
			}
			v, _ := strconv.ParseFloat(strings.TrimSuffix(m[2], "%"), 64)
			if v < last {
				t.Errorf("progress went back from %.1f%% to %.1f%%:\n%s", last, v, watched)
			}
			if v > last {
				rising++
			}
			last = v
		case "Ready":
			ready = m[2] == "100%"
		}
	}
	if provisioning < 2 || rising < 2 || !ready {
		t.Errorf("kubectl get -w: want Provisioning with rising progress (%d lines, %d rises), then Ready 100%% (%t):\n%s", provisioning, rising, ready, watched)
	}
}

// TestProvisionFromUpload: the seed's "Загрузка образа из командной
// строки" — WaitForUserUpload, upload URLs in the status, `curl -T` to the
// in-cluster URL, Ready.
func TestProvisionFromUpload(t *testing.T) {
	e := newProvEnv(t, "")
	iso := makeISO(t, t.TempDir(), "cirros")
	e.apply(t, `apiVersion: virtualization.deckhouse.io/v1alpha2
kind: ClusterVirtualImage
metadata:
  name: some-image
spec:
  dataSource:
    type: Upload
`)
	obj := e.waitPhase(t, "", "some-image", "WaitForUserUpload", time.Minute)
	url := status(obj, "imageUploadURLs", "inCluster")
	if !strings.HasPrefix(url, "http://"+e.srv.Addr+"/upload/") || len(url) < len("http://"+e.srv.Addr+"/upload/")+22 {
		t.Fatalf("status.imageUploadURLs.inCluster = %q", url)
	}
	curl := dvcrtest.Tool(t, "curl", "apt-get install -y curl")
	if out, err := exec.Command(curl, "--fail", "--silent", "--show-error", "-T", iso, url).CombinedOutput(); err != nil {
		t.Fatalf("curl -T: %v\n%s", err, out)
	}
	obj = e.waitPhase(t, "", "some-image", "Ready", time.Minute)
	if status(obj, "format") != "iso" || status(obj, "cdrom") != "true" {
		t.Errorf("uploaded ISO: format %q cdrom %q", status(obj, "format"), status(obj, "cdrom"))
	}
	name, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/some-image"))
	if !bytes.Equal(got, readFile(t, iso)) || name != "disk/"+filepath.Base(iso) && name != "disk/disk.img" {
		t.Errorf("uploaded image: %s, %d bytes", name, len(got))
	}
	out, _ := exec.Command(curl, "--silent", "--output", "/dev/null", "--write-out", "%{http_code}", "-T", iso, url).CombinedOutput()
	if string(out) != "404" {
		t.Errorf("a second upload to a used token: HTTP %s, want 404", out)
	}
}
