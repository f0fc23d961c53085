package node

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// nodeIP is the node's address inside its namespace (hack/cluster/lib.sh).
const nodeIP = "172.30.0.2"

// listenInNode opens a TCP listener on the node's address inside the
// cluster's network namespace: a server of the test that the pods reach as
// they would reach any server of the cluster's network, and that nothing
// outside the namespace can. The socket stays in the namespace it was made
// in; only this OS thread enters it, and leaves again before it is unlocked.
func listenInNode(t *testing.T) net.Listener {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(repoRoot, "_out", "cluster", "anchor.pid"))
	if err != nil {
		t.Fatalf("the cluster's namespace: %v", err)
	}
	target, err := os.Open(fmt.Sprintf("/proc/%s/ns/net", strings.TrimSpace(string(pid))))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	own, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatalf("entering the cluster's network namespace: %v", err)
	}
	ln, listenErr := net.Listen("tcp", nodeIP+":0")
	if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread cannot go back: it must never run other goroutines.
		panic(fmt.Sprintf("leaving the cluster's network namespace: %v", err))
	}
	if listenErr != nil {
		t.Fatalf("listening on %s in the cluster's namespace: %v", nodeIP, listenErr)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
