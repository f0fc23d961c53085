// Command demo is `make demo`: DVCR's documented workflow on a fresh machine,
// with no cluster. It starts a local control plane (etcd and kube-apiserver
// from bin/k8s, the chart's CRDs), `dvcr serve` with provisioning, and an
// HTTP server with a small qcow2; then it walks through the user
// documentation: a ClusterVirtualImage from HTTP watched to Ready, an image
// uploaded with curl -T, the first resource deleted, `gc check` showing it
// eligible, and `gc run --yes`. Everything it started is stopped and its
// files removed at the end, or on Ctrl-C.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dvcr/dvcr/api/v1alpha2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := newDemo(ctx)
	if err == nil {
		err = d.run(ctx)
	}
	if d != nil {
		d.close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run is the walkthrough.
func (d *demo) run(ctx context.Context) error {
	step("Create a ClusterVirtualImage from an HTTP server (the documentation's ubuntu-24-04)")
	manifest := fmt.Sprintf(cviHTTP, d.imageURL)
	fmt.Print(manifest)
	if err := d.kubectlIn(ctx, manifest, "apply", "-f", "-"); err != nil {
		return err
	}
	step("kubectl get cvi ubuntu-24-04 -w")
	if err := d.watchUntil(ctx, "ubuntu-24-04", "Ready"); err != nil {
		return err
	}
	if err := d.kubectl(ctx, "get", "cvi", "ubuntu-24-04", "-o", "jsonpath={.status.size}{\"\\n\"}{.status.target}{\"\\n\"}"); err != nil {
		return err
	}

	step("Upload an image from the command line (the documentation's some-image)")
	if err := d.kubectlIn(ctx, cviUpload, "apply", "-f", "-"); err != nil {
		return err
	}
	url, err := d.uploadURL(ctx, "some-image")
	if err != nil {
		return err
	}
	fmt.Printf("status.imageUploadURLs.inCluster: %s\n$ curl --progress-bar -T cirros.qcow2 %s\n", url, url)
	if err := d.run1(ctx, "curl", "--fail", "--progress-bar", "-T", d.uploadFile, url); err != nil {
		return err
	}
	if err := d.waitPhase(ctx, "some-image", "Ready"); err != nil {
		return err
	}
	if err := d.kubectl(ctx, "get", "cvi"); err != nil {
		return err
	}

	step("Delete ubuntu-24-04: its image stays in DVCR until the garbage collector runs")
	if err := d.kubectl(ctx, "delete", "cvi", "ubuntu-24-04"); err != nil {
		return err
	}
	step("dvcr-cleaner gc check")
	if err := d.cleaner(ctx, "gc", "check"); err != nil {
		return err
	}
	step("dvcr-cleaner gc run --yes")
	if err := d.cleaner(ctx, "gc", "run", "--yes"); err != nil {
		return err
	}
	step("Done: the demo stops everything it started and removes its files")
	return nil
}

const cviHTTP = `apiVersion: ` + v1alpha2.APIVersion + `
kind: ClusterVirtualImage
metadata:
  name: ubuntu-24-04
spec:
  dataSource:
    type: HTTP
    http:
      url: %s
`

const cviUpload = `apiVersion: ` + v1alpha2.APIVersion + `
kind: ClusterVirtualImage
metadata:
  name: some-image
spec:
  dataSource:
    type: Upload
`

func step(title string) { fmt.Printf("\n==> %s\n", title) }
