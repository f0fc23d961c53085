package e2e

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestProvisionFromContainerImage: the seed's "Создание образа из реестра
// контейнеров" — an image laid out as FROM scratch + COPY disk /disk/ in a
// registry with authentication, pulled with a kubernetes.io/dockerconfigjson
// Secret named in spec.dataSource.containerImage.imagePullSecret. With a
// wrong password the image fails naming the authorization failure, and the
// controller retries.
func TestProvisionFromContainerImage(t *testing.T) {
	htpasswd := writeHtpasswd(t, "puller", "s3cret")
	source := dvcrtest.StartServer(t, dvcrtest.ServerOptions{
		Registry: fmt.Sprintf("auth:\n  htpasswd:\n    realm: dvcr-test\n    path: %s\n", htpasswd),
	})
	disk := dvcrtest.MakeDiskFile(t, t.TempDir(), "golden", "qcow2", "48M", 2<<20)
	data := readFile(t, disk)
	ref := source.Addr + "/cvi/golden:v1"
	pushContainerDisk(t, ref, "disk/golden.qcow2", data, &authn.Basic{Username: "puller", Password: "s3cret"})

	e := newProvEnv(t, "")
	if out, err := e.kubectl(t, "", "create", "namespace", "registry-creds"); err != nil {
		t.Fatalf("kubectl create namespace: %v\n%s", err, out)
	}
	for secret, pass := range map[string]string{"good-pull": "s3cret", "bad-pull": "wrong"} {
		out, err := e.kubectl(t, "", "-n", "registry-creds", "create", "secret", "docker-registry", secret,
			"--docker-server="+source.Addr, "--docker-username=puller", "--docker-password="+pass)
		if err != nil {
			t.Fatalf("kubectl create secret: %v\n%s", err, out)
		}
	}
	cvi := func(name, secret string) string {
		return fmt.Sprintf(`apiVersion: virtualization.deckhouse.io/v1alpha2
kind: ClusterVirtualImage
metadata:
  name: %s
spec:
  dataSource:
    type: ContainerImage
    containerImage:
      image: %s
      imagePullSecret:
        name: %s
        namespace: registry-creds
`, name, ref, secret)
	}

	t.Run("good credentials", func(t *testing.T) {
		e.apply(t, cvi("golden", "good-pull"))
		obj := e.waitPhase(t, "", "golden", "Ready", 2*time.Minute)
		if got := status(obj, "format"); got != "qcow2" {
			t.Errorf("status.format = %q, want qcow2", got)
		}
		if got := status(obj, "size", "unpackedBytes"); got != strconv.Itoa(48<<20) {
			t.Errorf("status.size.unpackedBytes = %q, want %d", got, 48<<20)
		}
		if stored, _ := strconv.Atoi(status(obj, "size", "storedBytes")); stored < len(data) || stored > len(data)+8192 {
			t.Errorf("status.size.storedBytes %d for a %d-byte file", stored, len(data))
		}
		if got := status(obj, "target", "registryURL"); got != "dvcr.test/cvi/golden:latest" {
			t.Errorf("status.target.registryURL = %q", got)
		}
		name, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/golden"))
		if !bytes.Equal(got, data) {
			t.Fatalf("pulled %s (%d bytes): differs from the disk in the container image", name, len(got))
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		e.apply(t, cvi("denied", "bad-pull"))
		obj := e.waitPhase(t, "", "denied", "Failed", 2*time.Minute)
		reason, msg := condition(obj, "Ready")
		lower := strings.ToLower(msg)
		if reason != "ProvisioningFailed" || !strings.Contains(lower, "unauthorized") && !strings.Contains(lower, "access denied") {
			t.Errorf("Ready condition %s: %q, want the authorization failure", reason, msg)
		}
		if !strings.Contains(msg, "imagePullSecret") || !strings.Contains(msg, "retrying in 10s") {
			t.Errorf("Ready condition message %q: want a hint at the secret and a retry in 10s", msg)
		}
		// The retry happens 10 s later: it fails again (phase Failed, not
		// left Provisioning) and announces a longer wait.
		e.waitFor(t, "", "denied", "Failed again after the retry", 25*time.Second, func(o *unstructured.Unstructured) bool {
			_, m := condition(o, "Ready")
			return status(o, "phase") == "Failed" && strings.Contains(m, "retrying in 20s")
		})
		assertNoTag(t, e.srv, "cvi/denied")
	})
}
