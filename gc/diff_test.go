package gc

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/storage"
)

func inventory(paths ...string) *storage.Inventory {
	inv := &storage.Inventory{}
	for _, p := range paths {
		if repo, ok := storage.ClassifyPath(p); ok {
			inv.Repos = append(inv.Repos, repo)
		} else {
			inv.Unmanaged = append(inv.Unmanaged, p)
		}
	}
	return inv
}

func TestEligible(t *testing.T) {
	const host = "dvcr.d8-virtualization.svc"
	long := strings.Repeat("x", 250)
	cases := []struct {
		name     string
		repos    []string
		cluster  []Resource
		eligible string
	}{
		{"missing cvi", []string{"cvi/a"}, nil, "cvi/a"},
		{"live cvi", []string{"cvi/a"}, []Resource{{Kind: naming.KindCVI, Name: "a"}}, ""},
		{"cvi of the same name is not a vi", []string{"vi/default/a"}, []Resource{{Kind: naming.KindCVI, Name: "a"}}, "vi/default/a"},
		{"vi in another namespace", []string{"vi/prod/a"}, []Resource{{Kind: naming.KindVI, Namespace: "default", Name: "a"}}, "vi/prod/a"},
		{"live vi", []string{"vi/prod/a"}, []Resource{{Kind: naming.KindVI, Namespace: "prod", Name: "a"}}, ""},
		{"vd missing", []string{"vd/ns/d"}, nil, "vd/ns/d"},
		{"vd ready", []string{"vd/ns/d"}, []Resource{{Kind: naming.KindVD, Namespace: "ns", Name: "d", Phase: PhaseReady}}, "vd/ns/d"},
		{"vd provisioning", []string{"vd/ns/d"}, []Resource{{Kind: naming.KindVD, Namespace: "ns", Name: "d", Phase: "Provisioning"}}, ""},
		{"vd without phase", []string{"vd/ns/d"}, []Resource{{Kind: naming.KindVD, Namespace: "ns", Name: "d"}}, ""},
		{"legacy vi/<name> is a cvi", []string{"vi/legacy"}, []Resource{{Kind: naming.KindCVI, Name: "legacy"}}, ""},
		{"legacy vi/<name> orphan", []string{"vi/legacy"}, nil, "vi/legacy"},
		{"unmanaged never", []string{"foo/bar", "cvi/a/b"}, nil, ""},
		{"shortened name matches", []string{naming.RepositoryFor(host, naming.KindCVI, "", long).Path()}, []Resource{{Kind: naming.KindCVI, Name: long}}, ""},
		{"sorted by path", []string{"vi/default/z", "cvi/b", "vd/default/a"}, nil, "cvi/b vd/default/a vi/default/z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Eligible(inventory(tc.repos...), &ClusterInventory{Resources: tc.cluster}, host)
			var paths []string
			for _, c := range got {
				paths = append(paths, c.Path)
			}
			if s := strings.Join(paths, " "); s != tc.eligible {
				t.Fatalf("eligible %q, want %q", s, tc.eligible)
			}
		})
	}
}

// TestCheckReportText renders the documentation's example exactly.
func TestCheckReportText(t *testing.T) {
	gib := func(f float64) uint64 { return uint64(f * (1 << 30)) }
	report := &CheckReport{
		Registry: map[naming.Kind]int{naming.KindCVI: 2, naming.KindVI: 5, naming.KindVD: 1},
		Cluster:  map[naming.Kind]int{naming.KindCVI: 1, naming.KindVI: 5, naming.KindVD: 11},
		Usage:    &storage.Usage{Total: gib(36.3), Used: gib(13.1), Available: gib(22.4)},
		Eligible: []EligibleImage{
			{Kind: "ClusterVirtualImage", Name: "debian-12"},
			{Kind: "VirtualDisk", Namespace: "default", Name: "debian-10-root"},
			{Kind: "VirtualImage", Namespace: "default", Name: "ubuntu-2204"},
		},
	}
	want := `Found 2 cvi, 5 vi, 1 vd manifests in registry
Found 1 cvi, 5 vi, 11 vd resources in cluster
  Total     Used    Avail     Use%
36.3GiB  13.1GiB  22.4GiB      37%
Images eligible for cleanup:
KIND                   NAMESPACE            NAME
ClusterVirtualImage                         debian-12
VirtualDisk            default              debian-10-root
VirtualImage           default              ubuntu-2204
`
	var buf bytes.Buffer
	if err := report.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
	report.Eligible = nil
	buf.Reset()
	_ = report.WriteText(&buf)
	if !strings.HasSuffix(buf.String(), "37%\nNo images eligible for cleanup.\n") {
		t.Fatalf("nothing eligible:\n%s", buf.String())
	}
}
