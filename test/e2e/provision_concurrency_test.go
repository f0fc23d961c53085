package e2e

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// TestProvisionConcurrency: 20 images at once with
// dvcr.provisioning.concurrency 4: at most 4 transfers run at once (and
// more than one), the others wait in Pending (WaitingForImportSlot), and all
// become Ready with their own data.
func TestProvisionConcurrency(t *testing.T) {
	const n, limit = 20, 4
	e := newProvEnv(t, fmt.Sprintf("    concurrency: %d\n", limit))
	web := newFileServer(t, 2<<20) // 2 s per image
	data := make([][]byte, n)
	var manifests []string
	for i := range data {
		data[i] = randomData(t, 4<<20)
		manifests = append(manifests, httpCVI(fmt.Sprintf("img-%02d", i), web.add(fmt.Sprintf("img-%02d.raw", i), data[i])))
	}
	e.apply(t, joinManifests(manifests))

	start := time.Now()
	deadline := start.Add(3 * time.Minute)
	queued := map[string]bool{}
	for {
		ready := 0
		for i := range data {
			name := fmt.Sprintf("img-%02d", i)
			obj := e.image(t, "", name)
			switch status(obj, "phase") {
			case "Ready":
				ready++
			case "Failed":
				t.Fatalf("%s failed: %s", name, conditions(obj))
			case "Pending":
				if reason, _ := condition(obj, "Ready"); reason == "WaitingForImportSlot" {
					queued[name] = true
				}
			}
		}
		if ready == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d images Ready after %s\nserver:\n%s", ready, n, time.Since(start), e.srv.Stderr())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d images Ready in %s; %d seen waiting for a slot; peak %d transfers", n, time.Since(start).Round(time.Second), len(queued), web.peak.Load())
	if peak := web.peak.Load(); peak > limit || peak < 2 {
		t.Errorf("peak concurrent transfers %d, want 2..%d", peak, limit)
	}
	if len(queued) == 0 {
		t.Error("no image was seen in Pending with reason WaitingForImportSlot")
	}
	for i := range data {
		repo := fmt.Sprintf("cvi/img-%02d", i)
		if _, got := untarSingle(t, pulledLayer(t, e.srv, repo)); !bytes.Equal(got, data[i]) {
			t.Errorf("%s differs from its source", repo)
		}
	}
}

func joinManifests(m []string) string {
	var b bytes.Buffer
	for _, s := range m {
		b.WriteString("---\n" + s)
	}
	return b.String()
}
