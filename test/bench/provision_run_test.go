//go:build bench

// The provisioning benchmark's provisioning runs through the controller.

package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/dvcr/dvcr/test/envtest"
)

func pbProvision(t *testing.T, p pbParams, r *pbRun, dvcrBin, srvDir, srcBase string, files []string, kubeconfig string, dyn dynamic.Interface, settle func()) {
	srv := pbStartServer(t, dvcrBin, srvDir, kubeconfig, p.concurrency)
	defer srv.cleanup(t)
	defer pbDeleteAll(t, dyn)
	// The controller is up when its informers have listed and watched:
	// the request counter stops moving.
	pbWaitSettled(t, srv)
	settle()
	m0 := pbMetrics(t, srv.metricsURL())
	r.provIdleRSS = pbVmRSS(t, srv.pid())
	cpu0 := ppCpuTime(t, srv.pid())

	res := dyn.Resource(envtest.CVIResource)
	ctx, cancel := context.WithTimeout(context.Background(), pbReadyTimeout)
	defer cancel()
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Fatalf("%d ClusterVirtualImages left from before", len(list.Items))
	}
	images := map[string]*pbImage{}
	r.images = nil
	for i := range files {
		img := &pbImage{name: pbName(i)}
		images[img.name] = img
		r.images = append(r.images, img)
	}
	var mu sync.Mutex // guards images' fields
	readyCount := 0
	allReady := make(chan struct{})
	failed := make(chan string, 1)
	watchErr := make(chan error, 1)
	w, err := res.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		rv := list.GetResourceVersion()
		for {
			for ev := range w.ResultChan() {
				now := time.Now()
				obj, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					continue // a watch error: restart from rv
				}
				rv = obj.GetResourceVersion()
				mu.Lock()
				img := images[obj.GetName()]
				if img == nil || ev.Type == watch.Deleted {
					mu.Unlock()
					continue
				}
				if ev.Type == watch.Modified {
					img.modified++
					r.writes = append(r.writes, now)
				}
				phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
				switch phase {
				case "Pending":
					img.pending = true
				case "Provisioning":
					if img.started.IsZero() {
						img.started = now
					}
				case "Ready":
					if img.ready.IsZero() {
						img.ready = now
						if img.started.IsZero() {
							img.started = now
						}
						img.duration, _, _ = unstructured.NestedString(obj.Object, "status", "importDuration")
						img.unpacked, _, _ = unstructured.NestedString(obj.Object, "status", "size", "unpackedBytes")
						img.format, _, _ = unstructured.NestedString(obj.Object, "status", "format")
						readyCount++
						if readyCount == len(images) {
							close(allReady)
						}
					}
				case "Failed":
					img.failedMsg = fmt.Sprint(obj.Object["status"])
					select {
					case failed <- img.name + ": " + img.failedMsg:
					default:
					}
				}
				mu.Unlock()
			}
			if ctx.Err() != nil {
				return
			}
			w, err = res.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
			if err != nil {
				watchErr <- err
				return
			}
		}
	}()

	t0 := time.Now()
	var wg sync.WaitGroup
	createErr := make(chan error, len(files))
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": envtest.Group + "/" + envtest.Version,
				"kind":       "ClusterVirtualImage",
				"metadata":   map[string]any{"name": pbName(i)},
				"spec": map[string]any{
					"dataSource": map[string]any{"type": "HTTP", "http": map[string]any{"url": srcBase + f}},
				},
			}}
			if _, err := res.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				createErr <- fmt.Errorf("create %s: %w", pbName(i), err)
				return
			}
			mu.Lock()
			images[pbName(i)].created = time.Now()
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(createErr)
	for err := range createErr {
		t.Fatal(err)
	}
	t.Logf("created %d ClusterVirtualImages in %s", len(files), time.Since(t0).Round(time.Millisecond))
	select {
	case <-allReady:
	case msg := <-failed:
		t.Fatalf("image failed: %s\nserver:\n%s", msg, srv.stderr)
	case err := <-watchErr:
		t.Fatalf("watch: %v", err)
	case <-ctx.Done():
		mu.Lock()
		n := readyCount
		mu.Unlock()
		t.Fatalf("only %d of %d Ready within %s\nserver:\n%s", n, len(images), pbReadyTimeout, srv.stderr)
	}
	mu.Lock()
	var last time.Time
	first := r.images[0].started
	for _, img := range r.images {
		if img.ready.After(last) {
			last = img.ready
		}
		if img.started.Before(first) {
			first = img.started
		}
		if img.format != "raw" || img.unpacked != strconv.FormatInt(p.size, 10) {
			t.Errorf("%s: Ready with format %q, unpackedBytes %q; want raw, %d", img.name, img.format, img.unpacked, p.size)
		}
	}
	mu.Unlock()
	r.provWall = last.Sub(t0)
	r.firstStarted = first.Sub(t0)
	r.provCPU = (ppCpuTime(t, srv.pid()) - cpu0).Seconds()
	// Events are sent asynchronously: the idle window catches the last
	// ones, and would show a loop that goes on after Ready.
	m1 := pbMetrics(t, srv.metricsURL())
	time.Sleep(pbIdleWindow)
	m2 := pbMetrics(t, srv.metricsURL())
	r.idleReqs = pbSum(m2, "") - pbSum(m1, "")
	// Counted from the process start: the first lists and watches are
	// part of what the images cost.
	r.reqs, r.reqsByCode = map[string]float64{}, map[string]float64{}
	for k, v := range m2 {
		r.reqs[k.method] += v
		r.reqsByCode[k.code] += v
	}
	r.startupReqs = pbSum(m0, "")
	hwm, err := ppVmHWM(srv.pid())
	if err != nil {
		t.Fatal(err)
	}
	r.provRSS = hwm
}

// pbDeleteAll removes the ClusterVirtualImages (nothing holds them: the
// controller has no finalizer) and waits until they are gone.
func pbDeleteAll(t *testing.T, dyn dynamic.Interface) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := dyn.Resource(envtest.CVIResource)
	if err := res.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatalf("deleting the ClusterVirtualImages: %v", err)
	}
	for ctx.Err() == nil {
		l, err := res.List(ctx, metav1.ListOptions{})
		if err == nil && len(l.Items) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the ClusterVirtualImages are not gone within a minute")
}
