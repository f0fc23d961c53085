package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/storage"
	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/verify"
)

// verifyEnv is a registry with three images: cvi/alpha and vd/prod/shared
// share one disk (so their layer), vi/default/beta has its own.
type verifyEnv struct {
	srv          *dvcrtest.Server
	store        verifyStore // the storage, reached behind the registry's back
	shared, beta *dvcrtest.DiskImage
}

func newVerifyEnv(t *testing.T, opts dvcrtest.ServerOptions, store func(*testing.T, *dvcrtest.Server) verifyStore) *verifyEnv {
	t.Helper()
	e := &verifyEnv{srv: dvcrtest.StartServer(t, opts)}
	e.store = store(t, e.srv)
	e.shared = dvcrtest.MakeDisk(t, "shared", "qcow2", "4M", 256*1024)
	e.beta = dvcrtest.MakeDisk(t, "beta", "raw", "1M", 128*1024)
	dvcrtest.Push(t, e.srv, e.shared, "cvi/alpha", "latest")
	dvcrtest.Push(t, e.srv, e.shared, "vd/prod/shared", "latest")
	dvcrtest.Push(t, e.srv, e.beta, "vi/default/beta", "latest")
	return e
}

// verifyStore reads, writes and deletes files of the registry's storage
// by their paths in the storage driver (/docker/registry/v2/...).
type verifyStore interface {
	get(p string) ([]byte, error)
	put(p string, data []byte) error
	remove(p string) error
}

// filesStore is the filesystem driver's tree under root.
type filesStore string

func filesystem(_ *testing.T, s *dvcrtest.Server) verifyStore { return filesStore(s.DataDir) }

func (root filesStore) file(p string) string {
	return filepath.Join(string(root), filepath.FromSlash(p))
}

func (root filesStore) get(p string) ([]byte, error) {
	return os.ReadFile(root.file(p))
}

func (root filesStore) put(p string, data []byte) error {
	return os.WriteFile(root.file(p), data, 0o644)
}

func (root filesStore) remove(p string) error {
	return os.Remove(root.file(p))
}

// driverStore goes through the server's storage driver, opened from its
// configuration: on S3 an object deleted this way takes its "directory"
// with it, as on a real bucket (the posix backend's own directories
// would not).
type driverStore struct{ d storagedriver.StorageDriver }

func throughDriver(t *testing.T, s *dvcrtest.Server) verifyStore {
	t.Helper()
	cfg, err := config.Load(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := storage.OpenDriver(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return driverStore{d}
}

func (s driverStore) get(p string) ([]byte, error) {
	return s.d.GetContent(context.Background(), p)
}

func (s driverStore) put(p string, data []byte) error {
	return s.d.PutContent(context.Background(), p, data)
}

func (s driverStore) remove(p string) error {
	return s.d.Delete(context.Background(), p)
}

// layerLink is the link that makes blob d a layer of repo.
func layerLink(repo string, d digest.Digest) string {
	return path.Join(storage.RepositoryDir(repo), "_layers", string(d.Algorithm()), d.Encoded(), "link")
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

// damage changes a file of the storage for one case (change nil deletes
// it) and puts it back when the case ends.
func (e *verifyEnv) damage(t *testing.T, p string, change func([]byte) []byte) {
	t.Helper()
	orig, err := e.store.get(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.store.put(p, orig); err != nil {
			t.Fatal(err)
		}
	})
	if change == nil {
		err = e.store.remove(p)
	} else {
		err = e.store.put(p, change(append([]byte{}, orig...)))
	}
	if err != nil {
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

// damageCase is one kind of damage to the storage and what verify must
// report for it: problem with blob, for the images of repos only.
type damageCase struct {
	name   string
	file   func(e *verifyEnv) string // the storage path damaged
	change func([]byte) []byte       // nil deletes the file
	blob   func(e *verifyEnv) digest.Digest
	// problem is the report; onS3, when set, replaces it on S3, which has
	// no directories: a blob whose data object is deleted leaves no blob
	// directory for the links to name.
	problem, onS3 string
	repos         []string
	// also checks more of the case, such as the text report.
	also func(t *testing.T, e *verifyEnv)
}

func sharedBlob(e *verifyEnv) digest.Digest { return e.shared.Image.Layer.Digest }
func betaBlob(e *verifyEnv) digest.Digest   { return e.beta.Image.Layer.Digest }
func sharedData(e *verifyEnv) string        { return storage.BlobData(sharedBlob(e)) }
func betaData(e *verifyEnv) string          { return storage.BlobData(betaBlob(e)) }

// damageCases run on every storage driver (TestVerify, TestVerifyOnS3).
var damageCases = []damageCase{
	{name: "flipped byte", file: betaData, change: flipByte, blob: betaBlob,
		problem: verify.ProblemCorrupt, repos: []string{"vi/default/beta"}},
	{name: "shared blob corrupt", file: sharedData, change: flipByte, blob: sharedBlob,
		problem: verify.ProblemCorrupt, repos: []string{"cvi/alpha", "vd/prod/shared"}, also: sharedCorruptTable},
	{name: "truncated", file: betaData, change: func(b []byte) []byte { return b[:len(b)/2] }, blob: betaBlob,
		problem: verify.ProblemTruncated, repos: []string{"vi/default/beta"}},
	{name: "deleted blob", file: sharedData, blob: sharedBlob,
		problem: verify.ProblemMissing, onS3: verify.ProblemDanglingLink, repos: []string{"cvi/alpha", "vd/prod/shared"}},
	{name: "garbled link", file: func(e *verifyEnv) string { return layerLink("vd/prod/shared", sharedBlob(e)) },
		change: func([]byte) []byte { return []byte("sha256:garbage") }, blob: sharedBlob,
		problem: verify.ProblemDanglingLink, repos: []string{"vd/prod/shared"}},
	{name: "deleted link", file: func(e *verifyEnv) string { return layerLink("vi/default/beta", betaBlob(e)) }, blob: betaBlob,
		problem: verify.ProblemDanglingLink, repos: []string{"vi/default/beta"}},
}

// sharedCorruptTable: the text report names the problem, the blob and the
// command that removes each damaged image.
func sharedCorruptTable(t *testing.T, e *verifyEnv) {
	text := dvcrtest.Cleaner(t, "--config", e.srv.ConfigPath, "verify")
	t.Logf("verify:\n%s%s", text.Stdout, text.Stderr)
	for _, want := range []string{"corrupt", string(sharedBlob(e)), "dvcr-cleaner delete cvi alpha", "dvcr-cleaner delete vd shared -n prod", "Verification found problems"} {
		if !strings.Contains(text.Stdout, want) {
			t.Errorf("verify table lacks %q:\n%s", want, text.Stdout)
		}
	}
}

// verifyCases checks a clean store, then each damage case (the storage
// restored after each), then the store restored.
func verifyCases(t *testing.T, e *verifyEnv, s3 bool) {
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
	})
	for _, c := range damageCases {
		t.Run(c.name, func(t *testing.T) {
			e.damage(t, c.file(e), c.change)
			problem := c.problem
			if s3 && c.onS3 != "" {
				problem = c.onS3
			}
			r, res := e.verify(t)
			wantProblems(t, r, res, c.blob(e), problem, c.repos...)
			if c.also != nil {
				c.also(t, e)
			}
		})
	}
	if t.Failed() {
		return
	}
	r, res := e.verify(t)
	if res.ExitCode != 0 || !r.OK() {
		t.Fatalf("verify after restoring every file: exit %d %+v", res.ExitCode, r)
	}
	assertSameDisk(t, e.beta, dvcrtest.Pull(t, e.srv, "vi/default/beta", "latest"))
	assertSameDisk(t, e.shared, dvcrtest.Pull(t, e.srv, "cvi/alpha", "latest"))
}

// TestVerify: a clean store verifies ok; each kind of damage is reported
// as such for the images using the damaged blob, and only for them; the
// text report, --rate and verify status.
func TestVerify(t *testing.T) {
	e := newVerifyEnv(t, dvcrtest.ServerOptions{}, filesystem)
	verifyCases(t, e, false)
	text := dvcrtest.MustCleaner(t, "--config", e.srv.ConfigPath, "verify", "--rate", "100MiB/s")
	if !strings.Contains(text.Stdout, "Verification OK: ") || !strings.Contains(text.Stdout, "VirtualImage") {
		t.Errorf("verify table:\n%s", text.Stdout)
	}
	if bad := dvcrtest.Cleaner(t, "--config", e.srv.ConfigPath, "verify", "--rate", "fast"); bad.ExitCode == 0 || !strings.Contains(bad.Stderr, "--rate") {
		t.Errorf("verify --rate fast: exit %d %s", bad.ExitCode, bad.Stderr)
	}
	st := dvcrtest.MustCleaner(t, "--config", e.srv.ConfigPath, "verify", "status", "-o", "json")
	var list []verify.Result
	if err := json.Unmarshal([]byte(st.Stdout), &list); err != nil || len(list) < 3 || list[0].Result != verify.ResultOK || list[1].Result != verify.ResultOK {
		t.Fatalf("verify status: %v\n%s", err, st.Stdout)
	}
	text = dvcrtest.MustCleaner(t, "--config", e.srv.ConfigPath, "verify", "status")
	if !strings.Contains(text.Stdout, "RESULT") || !strings.Contains(text.Stdout, "corrupt") {
		t.Errorf("verify status:\n%s", text.Stdout)
	}
}

// TestVerifyOnS3: the same cases on S3 (versitygw), the damage done
// through the storage driver: objects overwritten, cut short or deleted
// in the bucket.
func TestVerifyOnS3(t *testing.T) {
	s3 := dvcrtest.StartS3(t)
	e := newVerifyEnv(t, dvcrtest.ServerOptions{Storage: s3.StorageYAML()}, throughDriver)
	verifyCases(t, e, true)
}

// TestVerifySchedule: dvcr serve verifies on dvcr.verify.schedule, records
// the results (verify status) and exports them as metrics.
func TestVerifySchedule(t *testing.T) {
	e := newVerifyEnv(t, dvcrtest.ServerOptions{Debug: true, DVCR: "  verify:\n    schedule: \"@every 1s\"\n"}, filesystem)
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
	e.damage(t, betaData(e), flipByte)
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
