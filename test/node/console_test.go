package node

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// consoleListen is where dvcr console listens, on the namespace's loopback.
const consoleListen = "127.0.0.1:18080"

// assertConsoleDownload runs dvcr console as the cluster's admin, logs in
// with its printed link and downloads the image with the console's
// Download: the file goes through the API server's proxy to DVCR's
// Service and must equal want.
func assertConsoleDownload(t *testing.T, repo, want string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	console := clusterCommand(ctx, "dvcr", "console", "--listen", consoleListen)
	stdout, err := console.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := console.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = console.Wait() }()
	login := make(chan string, 1)
	go func() {
		open := regexp.MustCompile(`http://\S+\?token=\S+`)
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			if m := open.FindString(sc.Text()); m != "" {
				login <- m
			}
		}
	}()
	var link string
	select {
	case link = <-login:
	case <-time.After(time.Minute):
		t.Fatal("dvcr console printed no login link")
	}
	jar := filepath.Join(t.TempDir(), "cookies")
	run(t, "curl", "-sSf", "-c", jar, "-b", jar, "-L", "-o", "/dev/null", link)
	out := filepath.Join(t.TempDir(), "downloaded")
	kind, name, _ := strings.Cut(repo, "/")
	headers := run(t, "curl", "-sSf", "-b", jar, "-D", "-", "-o", out, "http://"+consoleListen+"/api/download/"+kind+"/"+name)
	if !strings.Contains(strings.ToLower(headers), "content-disposition: attachment") {
		t.Errorf("the console's download has no attachment header:\n%s", headers)
	}
	if diff, err := exec.Command("cmp", want, out).CombinedOutput(); err != nil {
		t.Errorf("the console's Download of %s differs from the file uploaded: %v\n%s", repo, err, diff)
	}
}
