package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
	"github.com/dvcr/dvcr/test/testca"
)

// TestGCOnS3OverTLS: a collection on an S3 server with a self-signed
// certificate deletes an orphan repository and its blobs with the settings
// the s3-aws driver uses (the batch deleter shares its client): skipverify
// with the credentials only in REGISTRY_STORAGE_S3_*, or the CA trusted
// through AWS_CA_BUNDLE; with neither the run fails naming the x509 error.
func TestGCOnS3OverTLS(t *testing.T) {
	cluster := envtest.Start(t)
	kubeconfig := cluster.Kubeconfig(t)
	cluster.CreateCVI(t, "kept")
	ca := testca.New(t)
	caFile := ca.WritePEM(t)
	tests := []struct {
		name    string
		extra   []string
		env     []string
		wantErr string // empty: the run succeeds
	}{
		{name: "skipverify, keys in the environment", extra: []string{"skipverify: true"}, env: dvcrtest.KeysEnv()},
		{name: "AWS_CA_BUNDLE", env: append(dvcrtest.KeysEnv(), "AWS_CA_BUNDLE="+caFile)},
		{name: "untrusted", env: dvcrtest.KeysEnv(), wantErr: "x509: certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s3 := dvcrtest.StartS3TLS(t, ca)
			srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{
				Storage: s3.Storage(dvcrtest.S3Storage{KeysInEnv: true, Extra: tt.extra}),
				DVCR:    noGrace,
				Env:     append([]string{"KUBECONFIG=" + kubeconfig}, tt.env...),
			})
			cleaner := func(args ...string) dvcrtest.CleanerResult {
				return dvcrtest.Cleaner(t, append([]string{"--config", srv.ConfigPath, "--kubeconfig", kubeconfig}, args...)...)
			}
			if tt.wantErr != "" {
				res := cleaner("gc", "run", "--yes")
				if res.ExitCode == 0 || !strings.Contains(res.Stdout+res.Stderr, tt.wantErr) {
					t.Fatalf("gc run: exit %d, want a failure naming %q\n%s\n%s", res.ExitCode, tt.wantErr, res.Stdout, res.Stderr)
				}
				t.Logf("gc run says:\n%s%s", res.Stdout, res.Stderr)
				return
			}
			kept := dvcrtest.MakeDisk(t, "kept", "raw", "1M", 1<<20)
			dvcrtest.Push(t, srv, kept, "cvi/kept", "latest")
			dvcrtest.Push(t, srv, dvcrtest.MakeDisk(t, "orphan", "raw", "2M", 2<<20), "cvi/orphan", "latest")
			v2 := filepath.Join(s3.Root, s3.Bucket, "docker/registry/v2")
			orphanBlobs := uniqueBlobs(t, v2, "cvi/orphan", "cvi/kept")
			if len(orphanBlobs) == 0 {
				t.Fatal("the orphan has no blob of its own")
			}
			if res := cleaner("gc", "run", "--yes"); res.ExitCode != 0 || !strings.Contains(res.Stdout, "Freed space after cleanup") {
				t.Fatalf("gc run: exit %d\n%s\n%s", res.ExitCode, res.Stdout, res.Stderr)
			}
			if _, err := os.Stat(filepath.Join(v2, "repositories/cvi/orphan")); !os.IsNotExist(err) {
				t.Errorf("the orphan repository is still in the bucket (%v)", err)
			}
			for _, hex := range orphanBlobs {
				if _, err := os.Stat(filepath.Join(v2, "blobs/sha256", hex[:2], hex, "data")); !os.IsNotExist(err) {
					t.Errorf("the orphan's blob %s is still in the bucket (%v)", hex, err)
				}
			}
			assertSameDisk(t, kept, dvcrtest.Pull(t, srv, "cvi/kept", "latest"))
		})
	}
}

// uniqueBlobs are the digests (hex) of the layers linked in repo and not
// in other, read from the S3 server's posix backend.
func uniqueBlobs(t *testing.T, v2, repo, other string) []string {
	t.Helper()
	links := func(r string) map[string]bool {
		entries, err := os.ReadDir(filepath.Join(v2, "repositories", r, "_layers/sha256"))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, e := range entries {
			out[e.Name()] = true
		}
		return out
	}
	mine, theirs := links(repo), links(other)
	var out []string
	for hex := range mine {
		if !theirs[hex] {
			out = append(out, hex)
		}
	}
	return out
}
