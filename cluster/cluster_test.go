package cluster

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/dvcr/dvcr/registry"
)

var settings = Settings{Namespace: "ns", Name: "leader", LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second}

// replicaLease is the Lease of replica name renewed age ago, acknowledging ack.
func replicaLease(name string, age time.Duration, ack string) *coordv1.Lease {
	renewed := metav1.NewMicroTime(time.Now().Add(-age))
	seconds := int32(3)
	return &coordv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: ReplicaPrefix + name, Namespace: "ns",
			Labels: map[string]string{LabelRole: RoleReplica}, Annotations: map[string]string{AnnotationAck: ack}},
		Spec: coordv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: &seconds, RenewTime: &renewed},
	}
}

func TestExpired(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		age  time.Duration
		want bool
	}{
		{"just renewed", 0, false},
		{"past its duration, within the margin", 3500 * time.Millisecond, false},
		{"past duration and margin", 4100 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := settings.expired(replicaLease("r", tt.age, ""), now); got != tt.want {
				t.Errorf("expired = %t, want %t", got, tt.want)
			}
		})
	}
	if !settings.expired(&coordv1.Lease{}, now) {
		t.Error("a Lease never renewed is not expired")
	}
}

// TestWaitAcks: acknowledged and gone replicas let the window open; a live
// one that does not acknowledge aborts it, named in the error.
func TestWaitAcks(t *testing.T) {
	tests := []struct {
		name    string
		leases  []*coordv1.Lease
		wantErr error
		wantMsg string
	}{
		{"all acknowledged", []*coordv1.Lease{replicaLease("a", 0, "run1"), replicaLease("b", time.Second, "run1")}, nil, "every live replica refuses writes: a, b"},
		{"one gone", []*coordv1.Lease{replicaLease("a", 0, "run1"), replicaLease("dead", time.Minute, "")}, nil, "replica dead is gone"},
		{"old acknowledgment does not count", []*coordv1.Lease{replicaLease("a", 0, "run0")}, ErrNotAcknowledged, "a"},
		{"live, not acknowledging", []*coordv1.Lease{replicaLease("a", 0, "run1"), replicaLease("stuck", 0, "")}, ErrNotAcknowledged, "stuck"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			for _, l := range tt.leases {
				if _, err := client.CoordinationV1().Leases("ns").Create(context.Background(), l, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			c := &Coordinator{Settings: settings, Leases: client.CoordinationV1().Leases("ns"), AckTimeout: 300 * time.Millisecond}
			var lines []string
			err := c.waitAcks(context.Background(), "run1", func(l string) { lines = append(lines, l) })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			text := strings.Join(lines, "\n")
			if err != nil {
				text = err.Error()
			}
			if !strings.Contains(text, tt.wantMsg) {
				t.Errorf("%q lacks %q", text, tt.wantMsg)
			}
		})
	}
}

// TestReplicaFences: a new replica refuses writes until its first contact,
// takes them after it, and refuses them again once contact is older than
// the renew deadline.
func TestReplicaFences(t *testing.T) {
	client := fake.NewClientset()
	gate := registry.NewGate(time.Second)
	r := NewReplica(&Replica{
		Settings: Settings{Namespace: "ns", Name: "r1", LeaseDuration: 300 * time.Millisecond, RenewDeadline: 200 * time.Millisecond},
		Leases:   client.CoordinationV1().Leases("ns"), Gate: gate, ResetCaches: func() error { return nil },
		DrainTimeout: time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	if !gate.ReadOnly() {
		t.Fatal("a replica takes writes before its first contact")
	}
	r.beat(context.Background(), make(chan string, 1))
	if gate.ReadOnly() {
		t.Fatal("still read-only after renewing its Lease and reading the GC state")
	}
	if l, err := client.CoordinationV1().Leases("ns").Get(context.Background(), ReplicaPrefix+"r1", metav1.GetOptions{}); err != nil || l.Labels[LabelRole] != RoleReplica {
		t.Fatalf("the replica's Lease: %+v, %v", l, err)
	}
	time.Sleep(250 * time.Millisecond)
	r.fenceIfStale()
	if !gate.ReadOnly() {
		t.Fatal("takes writes with no contact for longer than the renew deadline")
	}
	r.beat(context.Background(), make(chan string, 1))
	if gate.ReadOnly() {
		t.Fatal("still fenced after contact came back")
	}
}

// TestReplicaFollowsWindow: a published window closes the gate; after the
// drain the replica acknowledges it in its Lease; the window's end drops
// the caches and opens the gate. A window whose Lease expired is ignored.
func TestReplicaFollowsWindow(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	leases := client.CoordinationV1().Leases("ns")
	gate := registry.NewGate(time.Second)
	resets := 0
	r := NewReplica(&Replica{
		Settings: settings, Leases: leases, Gate: gate, DrainTimeout: time.Second, Logger: slog.New(slog.DiscardHandler),
		ResetCaches: func() error { resets++; return nil },
	})
	drained := make(chan string, 1)
	publish := func(run string, age time.Duration) {
		t.Helper()
		if _, err := renewLease(ctx, leases, GCLease, "leader", settings.LeaseDuration, nil, map[string]string{AnnotationWindow: run}); err != nil {
			t.Fatal(err)
		}
		l, _ := leases.Get(ctx, GCLease, metav1.GetOptions{})
		renewed := metav1.NewMicroTime(time.Now().Add(-age))
		l.Spec.RenewTime = &renewed
		if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ack := func() string {
		l, _ := leases.Get(ctx, ReplicaPrefix+settings.Name, metav1.GetOptions{})
		return l.Annotations[AnnotationAck]
	}

	publish("run1", 0)
	r.beat(ctx, drained)
	if !gate.ReadOnly() || ack() != "" {
		t.Fatalf("in the window: read-only %t, ack %q before the drain", gate.ReadOnly(), ack())
	}
	select {
	case run := <-drained:
		r.ack = run
	case <-time.After(2 * time.Second):
		t.Fatal("no drain reported")
	}
	r.beat(ctx, drained)
	if ack() != "run1" {
		t.Fatalf("ack %q after the drain", ack())
	}
	publish("", 0)
	r.beat(ctx, drained)
	if gate.ReadOnly() || resets != 1 || ack() != "" {
		t.Fatalf("after the window: read-only %t, %d cache resets, ack %q", gate.ReadOnly(), resets, ack())
	}
	publish("run2", time.Minute) // abandoned: its Lease expired long ago
	r.beat(ctx, drained)
	if gate.ReadOnly() {
		t.Fatal("an abandoned window closes the gate")
	}
}
