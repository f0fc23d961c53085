package node

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// bigImage is the ClusterVirtualImage imported from HTTP: 1 GiB, served at
// 96 MiB/s so that its import lasts long enough to be watched.
const (
	bigImage     = "big"
	bigImageSize = 1 << 30
)

func testImageFromHTTP(t *testing.T) {
	pod := dvcrPod(t)
	idle, _ := podMemory(t, pod)
	srv := newDiskServer(t, bigImageSize, 96<<20)
	stop := watch(t, "cvi")
	start := time.Now()
	apply(t, fmt.Sprintf(`apiVersion: virtualization.deckhouse.io/v1alpha2
kind: ClusterVirtualImage
metadata: {name: %s}
spec:
  dataSource:
    type: HTTP
    http: {url: %q}
`, bigImage, srv.URL))
	waitPhase(t, "cvi/"+bigImage, "Ready", 5*time.Minute)
	took := time.Since(start)
	lines := stop()
	_, peak := podMemory(t, pod)
	measure(t, "import_1gib_seconds", took.Seconds())
	measure(t, "pod_rss_idle_bytes", float64(idle))
	measure(t, "pod_rss_peak_during_1gib_import_bytes", float64(peak))

	progress := regexp.MustCompile(`^` + bigImage + `\s+Provisioning\s.*?\s(\d+(\.\d+)?)%`)
	var seen []string
	for _, l := range lines {
		if m := progress.FindStringSubmatch(l); m != nil && m[1] != "0" && m[1] != "0.0" && m[1] != "100" {
			seen = append(seen, m[1]+"%")
		}
	}
	if len(seen) == 0 {
		t.Errorf("kubectl get cvi -w showed no progress between 0 and 100%%:\n%s", strings.Join(lines, "\n"))
	}
	if got := kubectl(t, "get", "cvi", bigImage, "-o", "jsonpath={.status.size.unpackedBytes}"); got != fmt.Sprint(bigImageSize) {
		t.Errorf("status.size.unpackedBytes = %s, want %d", got, bigImageSize)
	}
	t.Logf("imported 1 GiB in %s; progress seen: %v; RSS idle %d MiB, peak %d MiB", took.Round(time.Millisecond), seen, idle>>20, peak>>20)
}

// serviceIP is the ClusterIP of DVCR's Service (reached through kube-proxy).
func serviceIP(t *testing.T) string {
	return strings.TrimSpace(kubectl(t, "-n", ns, "get", "svc", "dvcr", "-o", "jsonpath={.spec.clusterIP}"))
}

func testUploadWithCurl(t *testing.T) {
	apply(t, `apiVersion: virtualization.deckhouse.io/v1alpha2
kind: ClusterVirtualImage
metadata: {name: uploaded}
spec:
  dataSource: {type: Upload}
`)
	waitPhase(t, "cvi/uploaded", "WaitForUserUpload", 2*time.Minute)
	url := kubectl(t, "get", "cvi", "uploaded", "-o", "jsonpath={.status.imageUploadURLs.inCluster}")
	if !strings.HasPrefix(url, "http://dvcr."+ns+".svc/upload/") {
		t.Fatalf("status.imageUploadURLs.inCluster = %q", url)
	}
	disk := filepath.Join(t.TempDir(), "disk.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", disk, "256M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	// The namespace has no DNS: resolve the Service's name the way the
	// cluster's DNS would.
	run(t, "curl", "-sSf", "--resolve", "dvcr."+ns+".svc:80:"+serviceIP(t), "-T", disk, url)
	waitPhase(t, "cvi/uploaded", "Ready", 2*time.Minute)
	if got := kubectl(t, "get", "cvi", "uploaded", "-o", "jsonpath={.status.format}"); got != "qcow2" {
		t.Errorf("status.format = %q, want qcow2", got)
	}
	// And out again through the Service, byte for byte.
	out := filepath.Join(t.TempDir(), "exported.qcow2")
	run(t, "dvcr", "export", "cvi/uploaded", out, "--registry", "http://"+serviceIP(t))
	if diff, err := exec.Command("cmp", disk, out).CombinedOutput(); err != nil {
		t.Errorf("dvcr export of the uploaded image differs from the file uploaded: %v\n%s", err, diff)
	}
	// And through the web console, with the operator's identity.
	assertConsoleDownload(t, "cvi/uploaded", disk)
}

func testVirtualImageByObjectRef(t *testing.T) {
	kubectl(t, "create", "namespace", "project")
	apply(t, `apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualImage
metadata: {name: copy, namespace: project}
spec:
  storage: ContainerRegistry
  dataSource:
    type: ObjectRef
    objectRef: {kind: ClusterVirtualImage, name: uploaded}
`)
	waitPhase(t, "-n project vi/copy", "Ready", 2*time.Minute)
}

// gcReport matches the documented report of gc check for this cluster: the
// three images in the registry, big's resource deleted.
var gcReport = regexp.MustCompile(`^Found 2 cvi, 1 vi, 0 vd manifests in registry
Found 1 cvi, 1 vi, 0 vd resources in cluster
 +Total +Used +Avail +Use%
 *\d+(\.\d)?[KMGTP]?i?B +\d+(\.\d)?[KMGTP]?i?B +\d+(\.\d)?[KMGTP]?i?B +\d+%
Images eligible for cleanup:
KIND +NAMESPACE +NAME
ClusterVirtualImage +big
$`)

func testGCThroughKubectlExec(t *testing.T) {
	kubectl(t, "delete", "cvi", bigImage)
	if out := dvcrExec(t, "dvcr-cleaner", "gc", "check"); !gcReport.MatchString(out) {
		t.Errorf("kubectl exec deploy/dvcr -- dvcr-cleaner gc check printed:\n%s\nwant the documented report naming big", out)
	}
	if out := dvcrExec(t, "dvcr-cleaner", "ls", "cvi"); !strings.Contains(out, "big") || !strings.Contains(out, "uploaded") {
		t.Errorf("dvcr-cleaner ls cvi:\n%s", out)
	}
	// With the chart's gracePeriod of 1h, the image deleted a minute ago is
	// kept by this run; the scheduled run after the upgrade frees it.
	out := dvcrExec(t, "dvcr-cleaner", "gc", "run", "--yes")
	if !strings.Contains(out, "big") {
		t.Errorf("dvcr-cleaner gc run --yes does not name big, kept for the grace period:\n%s", out)
	}
	if out := dvcrExec(t, "dvcr-cleaner", "gc", "status"); !regexp.MustCompile(`manual +success`).MatchString(out) {
		t.Errorf("dvcr-cleaner gc status shows no successful manual run:\n%s", out)
	}
	dvcrExec(t, "dvcr-cleaner", "delete", "cvi", bigImage, "--yes")
	if out := dvcrExec(t, "dvcr-cleaner", "ls", "cvi"); strings.Contains(out, "big") {
		t.Errorf("dvcr-cleaner ls cvi still lists big after delete:\n%s", out)
	}
}

// testVerifyThroughKubectlExec re-reads every blob in the pod, as an
// operator would after a disk incident: the store is whole.
func testVerifyThroughKubectlExec(t *testing.T) {
	out := dvcrExec(t, "dvcr-cleaner", "verify", "-o", "json")
	var res struct {
		Result       string `json:"result"`
		BlobsChecked int    `json:"blobsChecked"`
		BytesRead    int64  `json:"bytesRead"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("dvcr-cleaner verify -o json: %v\n%s", err, out)
	}
	if res.Result != "ok" || res.BlobsChecked == 0 || res.BytesRead < bigImageSize {
		t.Errorf("dvcr-cleaner verify in the pod: %s", out)
	}
	if out := dvcrExec(t, "dvcr-cleaner", "verify", "status"); !strings.Contains(out, "ok") {
		t.Errorf("dvcr-cleaner verify status:\n%s", out)
	}
}

func testPodDeletedKeepsImages(t *testing.T) {
	old := dvcrPod(t)
	kubectl(t, "-n", ns, "delete", "pod", old)
	eventually(t, 3*time.Minute, "a new DVCR pod", func() error {
		if pod := dvcrPod(t); pod == old {
			return fmt.Errorf("still %s", pod)
		}
		return nil
	})
	kubectl(t, "-n", ns, "rollout", "status", "deploy/dvcr", "--timeout=180s")
	for _, repo := range []string{"cvi/uploaded", "vi/project/copy"} {
		// The Service follows the new pod once kube-proxy has its endpoint.
		eventually(t, time.Minute, "GET /v2/"+repo+"/manifests/latest after the pod was replaced", func() error {
			code, _ := tryRun(t, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
				"-H", "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
				"http://"+serviceIP(t)+"/v2/"+repo+"/manifests/latest")
			if code != "200" {
				return fmt.Errorf("HTTP %s", code)
			}
			return nil
		})
	}
}

func testUpgradeWithSchedule(t *testing.T) {
	old := dvcrPod(t)
	run(t, "helm", "upgrade", "dvcr", "charts/dvcr", "-n", ns, "--reuse-values",
		"--set", "dvcr.gc.schedule=@every 1m", "--set", "dvcr.gc.gracePeriod=0s")
	kubectl(t, "-n", ns, "rollout", "status", "deploy/dvcr", "--timeout=180s")
	if pod := dvcrPod(t); pod == old {
		t.Fatalf("helm upgrade with a new schedule did not roll the pod (%s)", pod)
	}
	var scheduled map[string]any
	eventually(t, 3*time.Minute, "a scheduled run in gc status", func() error {
		var results []map[string]any
		out := dvcrExec(t, "dvcr-cleaner", "gc", "status", "-o", "json")
		if err := json.Unmarshal([]byte(out), &results); err != nil {
			return fmt.Errorf("gc status -o json: %v: %s", err, out)
		}
		for _, r := range results {
			if r["trigger"] == "schedule" && r["result"] == "success" {
				scheduled = r
				return nil
			}
		}
		return fmt.Errorf("no successful scheduled run among %d", len(results))
	})
	if freed, _ := scheduled["freed"].(float64); freed < bigImageSize {
		t.Errorf("the scheduled run freed %.0f bytes, want big's 1 GiB: %v", freed, scheduled)
	}
	metrics := run(t, "curl", "-sSf", "http://"+serviceIP(t)+":5001/metrics")
	if !regexp.MustCompile(`(?m)^dvcr_gc_runs_total\{result="success"\} [1-9]`).MatchString(metrics) {
		t.Errorf("the metrics port does not count the successful runs:\n%s", grepLines(metrics, "dvcr_gc_runs_total"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
