package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/naming"
)

var cviResource = v1alpha2.Resources[naming.KindCVI]

// demo holds what the walkthrough started.
type demo struct {
	root       string // the repository
	dir        string // temporary files
	env        *envtest.Environment
	kubeconfig string
	dyn        dynamic.Interface
	serve      *exec.Cmd
	config     string
	web        *http.Server
	imageURL   string
	uploadFile string
}

// newDemo starts the control plane, dvcr serve and the HTTP server.
func newDemo(ctx context.Context) (*demo, error) {
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dvcr-demo-")
	if err != nil {
		return nil, err
	}
	d := &demo{root: root, dir: dir}
	step("Make two small disk images with qemu-img")
	if err := d.makeImages(ctx); err != nil {
		return d, err
	}
	step("Start a local control plane: etcd and kube-apiserver from bin/k8s, the chart's CRDs")
	if err := d.startCluster(); err != nil {
		return d, err
	}
	step("Start an HTTP server with the image, and dvcr serve with provisioning")
	if err := d.startWeb(); err != nil {
		return d, err
	}
	return d, d.startServe(ctx)
}

func (d *demo) makeImages(ctx context.Context) error {
	raw := filepath.Join(d.dir, "noble.raw")
	cmds := [][]string{
		{"qemu-img", "create", "-f", "raw", raw, "256M"},
		{"dd", "if=/dev/urandom", "of=" + raw, "bs=1M", "count=24", "conv=notrunc", "status=none"},
		{"qemu-img", "convert", "-O", "qcow2", raw, filepath.Join(d.dir, "noble.qcow2")},
		{"qemu-img", "create", "-f", "qcow2", filepath.Join(d.dir, "cirros.qcow2"), "112M"},
	}
	for _, c := range cmds {
		if err := d.run1(ctx, c[0], c[1:]...); err != nil {
			return err
		}
	}
	d.uploadFile = filepath.Join(d.dir, "cirros.qcow2")
	return os.Remove(raw)
}

func (d *demo) startCluster() error {
	ctrllog.SetLogger(logr.Discard())
	d.env = &envtest.Environment{
		BinaryAssetsDirectory:    filepath.Join(d.root, "bin", "k8s"),
		CRDDirectoryPaths:        []string{filepath.Join(d.root, "charts", "dvcr", "files", "crds")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 90 * time.Second,
	}
	cfg, err := d.env.Start()
	if err != nil {
		return fmt.Errorf("starting the control plane (run `make testbin` first): %w", err)
	}
	d.dyn = dynamic.NewForConfigOrDie(cfg)
	d.kubeconfig = filepath.Join(d.dir, "kubeconfig")
	return os.WriteFile(d.kubeconfig, d.env.KubeConfig, 0o600)
}

// startWeb serves noble.qcow2 at 8 MiB/s, so that the progress shows.
func (d *demo) startWeb() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	file := filepath.Join(d.dir, "noble.qcow2")
	d.web = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		w.Header().Set("Content-Length", fmt.Sprint(st.Size()))
		buf := make([]byte, 1<<20)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				time.Sleep(time.Second / 8)
			}
			if err != nil {
				return
			}
		}
	}), ReadHeaderTimeout: time.Minute}
	go func() { _ = d.web.Serve(ln) }()
	d.imageURL = "http://" + ln.Addr().String() + "/noble-server-cloudimg-amd64.img"
	fmt.Println("image at", d.imageURL)
	return nil
}

// startServe runs bin/dvcr serve on a free port with provisioning on and no
// GC grace period (so the deleted image is collected at once).
func (d *demo) startServe(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	d.config = filepath.Join(d.dir, "config.yml")
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http: {addr: %s}
dvcr:
  adminSocket: %s
  gc: {gracePeriod: 0s}
  provisioning: {enabled: true, registryURL: %s}
`, filepath.Join(d.dir, "data"), addr, filepath.Join(d.dir, "admin.sock"), addr)
	if err := os.WriteFile(d.config, []byte(cfg), 0o600); err != nil {
		return err
	}
	d.serve = exec.Command(filepath.Join(d.root, "bin", "dvcr"), "serve", "--config", d.config)
	d.serve.Env = append(os.Environ(), "KUBECONFIG="+d.kubeconfig)
	d.serve.Stdout, d.serve.Stderr = os.Stdout, os.Stderr
	if err := d.serve.Start(); err != nil {
		return err
	}
	return waitHTTP(ctx, "http://"+addr+"/v2/")
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitHTTP(ctx context.Context, url string) error {
	for range 200 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer", url)
}

// kubectl runs bin/k8s/kubectl against the demo cluster, showing the command.
func (d *demo) kubectl(ctx context.Context, args ...string) error {
	return d.kubectlIn(ctx, "", args...)
}

func (d *demo) kubectlIn(ctx context.Context, stdin string, args ...string) error {
	fmt.Printf("$ kubectl %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, filepath.Join(d.root, "bin", "k8s", "kubectl"), append([]string{"--kubeconfig", d.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// cleaner runs bin/dvcr-cleaner with the demo's config and cluster.
func (d *demo) cleaner(ctx context.Context, args ...string) error {
	fmt.Printf("$ dvcr-cleaner %s\n", strings.Join(args, " "))
	return d.run1(ctx, filepath.Join(d.root, "bin", "dvcr-cleaner"), append([]string{"--config", d.config, "--kubeconfig", d.kubeconfig}, args...)...)
}

func (d *demo) run1(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// watchUntil shows `kubectl get cvi NAME -w` until the image is in phase.
func (d *demo) watchUntil(ctx context.Context, name, phase string) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(wctx, filepath.Join(d.root, "bin", "k8s", "kubectl"), "--kubeconfig", d.kubeconfig, "get", "cvi", name, "-w")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	err := d.waitPhase(ctx, name, phase)
	time.Sleep(time.Second) // the watch prints the last change
	cancel()
	_ = cmd.Wait()
	return err
}

// waitPhase polls the image until it reaches phase (5 minutes at most).
func (d *demo) waitPhase(ctx context.Context, name, phase string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		obj, err := d.dyn.Resource(cviResource).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			got, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
			if got == phase {
				return nil
			}
			if got == "Failed" {
				return fmt.Errorf("cvi %s failed: %v", name, obj.Object["status"])
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("cvi %s did not become %s", name, phase)
}

// uploadURL waits for WaitForUserUpload and returns the in-cluster URL.
func (d *demo) uploadURL(ctx context.Context, name string) (string, error) {
	if err := d.waitPhase(ctx, name, "WaitForUserUpload"); err != nil {
		return "", err
	}
	obj, err := d.dyn.Resource(cviResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	url, _, _ := unstructured.NestedString(obj.Object, "status", "imageUploadURLs", "inCluster")
	if url == "" {
		return "", errors.New("no upload URL in the status")
	}
	return url, nil
}

// close stops everything and removes the temporary files.
func (d *demo) close() {
	if d.serve != nil && d.serve.Process != nil {
		_ = d.serve.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = d.serve.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = d.serve.Process.Kill()
		}
	}
	if d.web != nil {
		_ = d.web.Close()
	}
	if d.env != nil {
		_ = d.env.Stop()
	}
	_ = os.RemoveAll(d.dir)
}
