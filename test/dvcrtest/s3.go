package dvcrtest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/testca"
)

// S3 is a versitygw S3 server (posix backend) on loopback, started by a
// test, with one bucket.
type S3 struct {
	Endpoint string // http://127.0.0.1:PORT
	Bucket   string
	Root     string // the posix backend's directory; the bucket is Root/Bucket
	cmd      *exec.Cmd
	out      bytes.Buffer
}

// S3 credentials of the test server.
const (
	S3AccessKey = "AKIADVCRTEST"
	S3SecretKey = "dvcr-test-secret-key"
)

// StartS3 starts bin/versitygw (make tools builds it) with an empty bucket
// "dvcr"; it is stopped when the test ends.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	return startS3(t, nil)
}

// StartS3TLS is StartS3 serving HTTPS with the certificate ca made for
// 127.0.0.1.
func StartS3TLS(t testing.TB, ca testca.CA) *S3 {
	t.Helper()
	return startS3(t, &ca)
}

func startS3(t testing.TB, ca *testca.CA) *S3 {
	t.Helper()
	bin := Binary(t, "versitygw")
	s := &S3{Bucket: "dvcr", Root: t.TempDir()}
	if err := os.Mkdir(filepath.Join(s.Root, s.Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	s.Endpoint = "http://" + addr
	args := []string{"--access", S3AccessKey, "--secret", S3SecretKey, "--port", addr}
	client := http.DefaultClient
	if ca != nil {
		cert, key := ca.WriteServerFiles(t)
		args = append(args, "--cert", cert, "--key", key)
		s.Endpoint = "https://" + addr
		// Only to see it answer: the tests decide how DVCR trusts it.
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	s.cmd = exec.Command(bin, append(args, "posix", s.Root)...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(s.Endpoint); err == nil {
			resp.Body.Close()
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("versitygw did not answer on %s within 30s:\n%s", addr, s.out.String())
	return nil
}

// S3Storage tunes the storage section S3.Storage writes.
type S3Storage struct {
	// KeysInEnv leaves the credentials out of the file: pass KeysEnv() to
	// the server's environment instead.
	KeysInEnv bool
	// Extra driver keys, one "key: value" per line, unindented.
	Extra []string
}

// StorageYAML is the storage driver section for ServerOptions.Storage:
// distribution's s3-aws driver, as an upstream registry would configure it.
func (s *S3) StorageYAML() string { return s.Storage(S3Storage{}) }

// Storage is StorageYAML tuned by o.
func (s *S3) Storage(o S3Storage) string {
	var b strings.Builder
	b.WriteString("  s3:\n")
	if !o.KeysInEnv {
		fmt.Fprintf(&b, "    accesskey: %s\n    secretkey: %s\n", S3AccessKey, S3SecretKey)
	}
	fmt.Fprintf(&b, "    region: us-east-1\n    regionendpoint: %s\n    bucket: %s\n", s.Endpoint, s.Bucket)
	fmt.Fprintf(&b, "    forcepathstyle: true\n    secure: %t\n    v4auth: true\n", strings.HasPrefix(s.Endpoint, "https://"))
	for _, kv := range o.Extra {
		b.WriteString("    " + kv + "\n")
	}
	b.WriteString("  redirect:\n    disable: true\n")
	return b.String()
}

// KeysEnv are the server's credentials as distribution's configuration
// overrides, for S3Storage.KeysInEnv.
func KeysEnv() []string {
	return []string{"REGISTRY_STORAGE_S3_ACCESSKEY=" + S3AccessKey, "REGISTRY_STORAGE_S3_SECRETKEY=" + S3SecretKey}
}

// freeAddr is a loopback address with a port free a moment ago, for a
// program that takes a port but cannot report the one it chose.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// PID is the process id of the S3 server, for CPU accounting.
func (s *S3) PID() int { return s.cmd.Process.Pid }
