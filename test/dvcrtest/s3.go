package dvcrtest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
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
	bin := Binary(t, "versitygw")
	s := &S3{Bucket: "dvcr", Root: t.TempDir()}
	if err := os.Mkdir(filepath.Join(s.Root, s.Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	s.Endpoint = "http://" + addr
	s.cmd = exec.Command(bin, "--access", S3AccessKey, "--secret", S3SecretKey, "--port", addr, "posix", s.Root)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.Endpoint); err == nil {
			resp.Body.Close()
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("versitygw did not answer on %s within 30s:\n%s", addr, s.out.String())
	return nil
}

// StorageYAML is the storage driver section for ServerOptions.Storage:
// distribution's s3-aws driver, as an upstream registry would configure it.
func (s *S3) StorageYAML() string {
	return fmt.Sprintf(`  s3:
    accesskey: %s
    secretkey: %s
    region: us-east-1
    regionendpoint: %s
    bucket: %s
    forcepathstyle: true
    secure: false
    v4auth: true
  redirect:
    disable: true
`, S3AccessKey, S3SecretKey, s.Endpoint, s.Bucket)
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
