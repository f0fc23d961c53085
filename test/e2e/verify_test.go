package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/verify"
)

// verifyEnv is a registry with three images: cvi/alpha and vd/prod/shared
// share one disk (so their layer), vi/default/beta has its own.
type verifyEnv struct {
	srv          *dvcrtest.Server
	root         string // where the storage's /docker lives
	shared, beta *dvcrtest.DiskImage
}

func newVerifyEnv(t *testing.T, opts dvcrtest.ServerOptions, root func(*dvcrtest.Server) string) *verifyEnv {
	t.Helper()
	e := &verifyEnv{srv: dvcrtest.StartServer(t, opts)}
	e.root = root(e.srv)
	e.shared = dvcrtest.MakeDisk(t, "shared", "qcow2", "4M", 256*1024)
	e.beta = dvcrtest.MakeDisk(t, "beta", "raw", "1M", 128*1024)
	dvcrtest.Push(t, e.srv, e.shared, "cvi/alpha", "latest")
	dvcrtest.Push(t, e.srv, e.shared, "vd/prod/shared", "latest")
	dvcrtest.Push(t, e.srv, e.beta, "vi/default/beta", "latest")
	return e
}

func (e *verifyEnv) blobData(d digest.Digest) string {
	return filepath.Join(e.root, "docker/registry/v2/blobs", string(d.Algorithm()), d.Encoded()[:2], d.Encoded(), "data")
}

func (e *verifyEnv) layerLink(repo string, d digest.Digest) string {
	return filepath.Join(e.root, "docker/registry/v2/repositories", repo, "_layers", string(d.Algorithm()), d.Encoded(), "link")
}

// verify runs dvcr-cleaner verify -o json and decodes its result.
func (e *verifyEnv) verify(t *testing.T) (verify.Result, dvcrtest.CleanerResult) {
	t.Helper()
	res := dvcrtest.Cleaner(t, "--config", e.srv.ConfigPath, "verify", "-o", "json")
	var r verify.Result
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		t.Fatalf("verify -o json: %v\nstdout:\n%s\nstderr:\n%s", err, res.Stdout, res.Stderr)
	}
	return r, res
}

// damage changes a file for one case and puts it back when the case ends.
func damage(t *testing.T, path string, change func([]byte) []byte) {
	t.Helper()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	})
	if change == nil {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(path, change(append([]byte{}, orig...)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func flipByte(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }

// wantProblems checks that exactly the images in want have problems, each
// the given problem with the given blob, and that the run failed.
func wantProblems(t *testing.T, r verify.Result, res dvcrtest.CleanerResult, blob digest.Digest, problem string, want ...string) {
	t.Helper()
	if res.ExitCode != 1 || r.Result != verify.ResultCorrupt {
		t.Fatalf("verify: exit %d, result %q, want 1 and corrupt\n%s", res.ExitCode, r.Result, res.Stderr)
	}
	bad := map[string]bool{}
	for _, img := range r.Images {
		if img.Status == verify.StatusOK {
			continue
		}
		bad[img.Repository] = true
		found := false
		for _, p := range img.Problems {
			found = found || (p.Blob == blob && p.Problem == problem)
		}
		if !found || img.Action == "" {
			t.Errorf("%s:%s: problems %+v, want %s of %s and an action", img.Repository, img.Tag, img.Problems, problem, blob)
		}
	}
	for _, repo := range want {
		if !bad[repo] {
			t.Errorf("%s reported ok, want %s", repo, problem)
		}
		delete(bad, repo)
	}
	if len(bad) > 0 {
		t.Errorf("images reported with problems that have none: %v", bad)
	}
}

// TestVerify: a clean store verifies ok; each kind of damage is reported
// as such for the images using the damaged blob, and only for them.
func TestVerify(t *testing.T) {
	e := newVerifyEnv(t, dvcrtest.ServerOptions{}, func(s *dvcrtest.Server) string { return s.DataDir })
	shared, beta := e.shared.Image.Layer.Digest, e.beta.Image.Layer.Digest

	t.Run("clean", func(t *testing.T) {
		r, res := e.verify(t)
		if res.ExitCode != 0 || r.Result != verify.ResultOK || len(r.Images) != 3 || r.BlobsChecked < 6 || r.BytesRead == 0 {
			t.Fatalf("verify of a clean store: exit %d %+v\n%s", res.ExitCode, r, res.Stderr)
		}
		for _, img := range r.Images {
			if img.Status != verify.StatusOK {
				t.Errorf("%+v", img)
			}
		}
		text := dvcrtest.MustCleaner(t, "--config", e.srv.ConfigPath, "verify", "--rate", "100MiB/s")
		if !strings.Contains(text.Stdout, "Verification OK: ") || !strings.Contains(text.Stdout, "VirtualImage") {
			t.Errorf("verify table:\n%s", text.Stdout)
		}
		if bad := dvcrtest.Cleaner(t, "--config", e.srv.ConfigPath, "verify", "--rate", "fast"); bad.ExitCode == 0 || !strings.Contains(bad.Stderr, "--rate") {
			t.Errorf("verify --rate fast: exit %d %s", bad.ExitCode, bad.Stderr)
		}
	})
	t.Run("flipped byte", func(t *testing.T) {
		damage(t, e.blobData(beta), flipByte)
		r, res := e.verify(t)
		wantProblems(t, r, res, beta, verify.ProblemCorrupt, "vi/default/beta")
	})
	t.Run("shared blob corrupt", func(t *testing.T) {
		damage(t, e.blobData(shared), flipByte)
		r, res := e.verify(t)
		wantProblems(t, r, res, shared, verify.ProblemCorrupt, "cvi/alpha", "vd/prod/shared")
		text := dvcrtest.Cleaner(t, "--config", e.srv.ConfigPath, "verify")
		t.Logf("verify:\n%s%s", text.Stdout, text.Stderr)
		for _, want := range []string{"corrupt", string(shared), "dvcr-cleaner delete cvi alpha", "dvcr-cleaner delete vd shared -n prod", "Verification found problems"} {
			if !strings.Contains(text.Stdout, want) {
				t.Errorf("verify table lacks %q:\n%s", want, text.Stdout)
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		damage(t, e.blobData(beta), func(b []byte) []byte { return b[:len(b)/2] })
		r, res := e.verify(t)
		wantProblems(t, r, res, beta, verify.ProblemTruncated, "vi/default/beta")
	})
	t.Run("missing data", func(t *testing.T) {
		damage(t, e.blobData(beta), nil)
		r, res := e.verify(t)
		wantProblems(t, r, res, beta, verify.ProblemMissing, "vi/default/beta")
	})
	t.Run("garbled link", func(t *testing.T) {
		damage(t, e.layerLink("vd/prod/shared", shared), func([]byte) []byte { return []byte("sha256:garbage") })
		r, res := e.verify(t)
		wantProblems(t, r, res, shared, verify.ProblemDanglingLink, "vd/prod/shared")
	})
	t.Run("deleted link", func(t *testing.T) {
		damage(t, e.layerLink("vi/default/beta", beta), nil)
		r, res := e.verify(t)
		wantProblems(t, r, res, beta, verify.ProblemDanglingLink, "vi/default/beta")
	})
	t.Run("status", func(t *testing.T) {
		st := dvcrtest.MustCleaner(t, "--config", e.srv.ConfigPath, "verify", "status", "-o", "json")
		var list []verify.Result
		if err := json.Unmarshal([]byte(st.Stdout), &list); err != nil || len(list) < 2 || list[0].Result != verify.ResultCorrupt {
			t.Fatalf("verify status: %v\n%s", err, st.Stdout)
		}
		text := dvcrtest.MustCleaner(t, "--config", e.srv.ConfigPath, "verify", "status")
		if !strings.Contains(text.Stdout, "RESULT") || !strings.Contains(text.Stdout, "corrupt") {
			t.Errorf("verify status:\n%s", text.Stdout)
		}
	})
	r, res := e.verify(t)
	if res.ExitCode != 0 || !r.OK() {
		t.Fatalf("verify after restoring every file: exit %d %+v", res.ExitCode, r)
	}
	assertSameDisk(t, e.beta, dvcrtest.Pull(t, e.srv, "vi/default/beta", "latest"))
}

// TestVerifyOnS3: a blob object overwritten with other bytes in the bucket
// is reported corrupt for the images using it.
func TestVerifyOnS3(t *testing.T) {
	s3 := dvcrtest.StartS3(t)
	e := newVerifyEnv(t, dvcrtest.ServerOptions{Storage: s3.StorageYAML()}, func(*dvcrtest.Server) string {
		return filepath.Join(s3.Root, s3.Bucket)
	})
	if r, res := e.verify(t); res.ExitCode != 0 || !r.OK() || len(r.Images) != 3 {
		t.Fatalf("verify on S3: exit %d %+v\n%s", res.ExitCode, r, res.Stderr)
	}
	shared := e.shared.Image.Layer.Digest
	damage(t, e.blobData(shared), flipByte)
	r, res := e.verify(t)
	wantProblems(t, r, res, shared, verify.ProblemCorrupt, "cvi/alpha", "vd/prod/shared")
}

// TestVerifySchedule: dvcr serve verifies on dvcr.verify.schedule, records
// the results (verify status) and exports them as metrics.
func TestVerifySchedule(t *testing.T) {
	e := newVerifyEnv(t, dvcrtest.ServerOptions{Debug: true, DVCR: "  verify:\n    schedule: \"@every 1s\"\n"},
		func(s *dvcrtest.Server) string { return s.DataDir })
	waitScheduled := func(result string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			st := dvcrtest.MustCleaner(t, "--config", e.srv.ConfigPath, "verify", "status", "-o", "json")
			var recs []verify.Result
			_ = json.Unmarshal([]byte(st.Stdout), &recs)
			if len(recs) > 0 && recs[0].Trigger == "schedule" && recs[0].Result == result {
				return
			}
			time.Sleep(300 * time.Millisecond)
		}
		t.Fatalf("no scheduled %s run recorded within 30s:\n%s", result, e.srv.Stderr())
	}
	waitScheduled(verify.ResultOK)
	damage(t, e.blobData(e.beta.Image.Layer.Digest), flipByte)
	waitScheduled(verify.ResultCorrupt)
	body := httpGet(t, e.srv.MetricsURL(t))
	for _, m := range []string{"dvcr_verify_corrupt_blobs 1", `dvcr_verify_runs_total{result="corrupt"}`, `dvcr_verify_runs_total{result="ok"}`} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
	if !strings.Contains(e.srv.Stderr(), "dvcr verify (schedule)") || !strings.Contains(e.srv.Stderr(), "vi/default/beta:latest: corrupt") {
		t.Errorf("server log:\n%s", e.srv.Stderr())
	}
}
