package node

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// testBadInput installs the chart with the mistakes operators make, each in
// a namespace of its own, and checks that the pod's events or logs say what
// is wrong in one line.
func testBadInput(t *testing.T) {
	cases := []struct {
		name, namespace string
		setup           []string // kubectl arguments run before the install
		values          []string
		want            string // in one line of the namespace's events or the pod's log
	}{
		{
			name: "storage class that does not exist", namespace: "bad-class",
			values: []string{"dvcr.storage.persistentVolumeClaim.storageClassName=no-such-class"},
			want:   `storageclass.storage.k8s.io "no-such-class" not found`,
		},
		{
			name: "S3 Secret without the keys", namespace: "bad-secret",
			setup: []string{"create", "secret", "generic", "dvcr-s3", "--from-literal=access=AKIA1"},
			values: []string{"dvcr.storage.type=S3", "dvcr.storage.s3.bucket=dvcr",
				"dvcr.storage.s3.endpoint=" + s3Endpoint, "dvcr.storage.s3.credentialsSecret=dvcr-s3"},
			want: "couldn't find key accessKey in Secret bad-secret/dvcr-s3",
		},
		{
			name: "schedule that does not parse", namespace: "bad-schedule",
			values: []string{"dvcr.storage.type=Ephemeral", "dvcr.gc.schedule=61 * * * *"},
			want:   "dvcr.gc.schedule",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kubectl(t, "create", "namespace", c.namespace)
			defer kubectl(t, "delete", "namespace", c.namespace, "--wait=false")
			if c.setup != nil {
				kubectl(t, append([]string{"-n", c.namespace}, c.setup...)...)
			}
			args := []string{"helm", "install", "dvcr", "charts/dvcr", "-n", c.namespace}
			for _, v := range c.values {
				args = append(args, "--set", v)
			}
			run(t, args...)
			defer run(t, "helm", "uninstall", "dvcr", "-n", c.namespace)
			line := waitForLine(t, c.namespace, c.want)
			t.Logf("%s: %s", c.name, line)
		})
	}
}

// waitForLine waits until one line of the namespace's events or of the DVCR
// pod's log contains want, and returns that line.
func waitForLine(t *testing.T, namespace, want string) string {
	t.Helper()
	var found string
	eventually(t, 2*time.Minute, fmt.Sprintf("%q in the events or logs of %s", want, namespace), func() error {
		events, _ := tryRun(t, "kubectl", "-n", namespace, "get", "events", "-o",
			"custom-columns=REASON:.reason,MESSAGE:.message", "--no-headers")
		logs, _ := tryRun(t, "kubectl", "-n", namespace, "logs", "-l", "app.kubernetes.io/name=dvcr", "--tail=20", "--prefix")
		for _, l := range strings.Split(events+"\n"+logs, "\n") {
			if strings.Contains(l, want) {
				found = l
				return nil
			}
		}
		return fmt.Errorf("events:\n%s\nlogs:\n%s", events, logs)
	})
	return found
}

// testBadUpgradeKeepsServing upgrades the replicas with a schedule that does
// not parse: the new pod says why it cannot start, the old ones keep
// serving every image, and a rollback brings the release back.
func testBadUpgradeKeepsServing(t *testing.T) {
	run(t, "helm", "upgrade", "dvcr", "charts/dvcr", "-n", ns, "--reuse-values", "--set", "dvcr.gc.schedule=61 * * * *")
	line := waitForLine(t, ns, "dvcr.gc.schedule")
	t.Logf("the new pod's log: %s", line)
	assertPulls(t, "cvi/on-s3", 64<<20)
	if ready := kubectl(t, "-n", ns, "get", "deploy", "dvcr", "-o", "jsonpath={.status.readyReplicas}"); ready != "3" {
		t.Errorf("%s replicas ready during the failed upgrade, want the 3 old ones", ready)
	}
	run(t, "helm", "rollback", "dvcr", "-n", ns)
	kubectl(t, "-n", ns, "rollout", "status", "deploy/dvcr", "--timeout=300s")
	assertPulls(t, "cvi/on-s3", 64<<20)
}
