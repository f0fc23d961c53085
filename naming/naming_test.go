package naming_test

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/naming"
)

const host = "dvcr.d8-virtualization.svc" // 26 characters

// fullRef is the image reference the platform builds for a repository name.
func fullRef(registryHost, prefix, name string) string {
	return registryHost + "/" + prefix + name
}

// fnvHex computes FNV-1a-64 independently of the code under test.
func fnvHex(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return fmt.Sprintf("%016x", h.Sum64())
}

// nameOfLen is a valid Kubernetes name of n characters that ends with a
// letter at every length ("abcdefghij..." repeated).
func nameOfLen(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	return strings.Repeat(letters, n/len(letters)+1)[:n]
}

func TestShortenNameUnchanged(t *testing.T) {
	tests := []struct {
		name, host, prefix, in string
	}{
		{"short cvi", host, "cvi/", "ubuntu-22.04"},
		{"short vi", host, "vi/default/", "ubuntu"},
		{"short vd", host, "vd/kube-system/", "disk.0"},
		{"empty host", "", "cvi/", "x"},
		// 26 + 1 + 4 + 224 = 255: exactly at the limit.
		{"at limit cvi", host, "cvi/", nameOfLen(255 - len(host) - 1 - len("cvi/"))},
		{"at limit vi", host, "vi/default/", nameOfLen(255 - len(host) - 1 - len("vi/default/"))},
		{"at limit long host", strings.Repeat("h", 200), "vd/ns/", nameOfLen(255 - 200 - 1 - len("vd/ns/"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := naming.ShortenName(tt.host, tt.prefix, tt.in); got != tt.in {
				t.Errorf("ShortenName changed %q (full reference %d chars) to %q", tt.in, len(fullRef(tt.host, tt.prefix, tt.in)), got)
			}
		})
	}
}

func TestShortenNameFullLength(t *testing.T) {
	// One character over the limit and well over it, for several hosts and
	// prefixes: the shortened full reference is exactly 255 characters when
	// nothing is trimmed, and the name is kept prefix + "-" + hash.
	hosts := []string{host, "localhost:5000", "dvcr.example.com", "r", strings.Repeat("h", 180)}
	prefixes := []string{"cvi/", "vi/default/", "vd/a-rather-long-namespace-name/"}
	for _, h := range hosts {
		for _, p := range prefixes {
			limit := 255 - len(h) - 1 - len(p)
			for _, over := range []int{1, 2, 30} {
				in := nameOfLen(limit + over)
				if len(in) > 253 {
					in = nameOfLen(253) // longest Kubernetes name
					if limit >= 253 {
						continue
					}
				}
				t.Run(fmt.Sprintf("%s/%s+%d", h, p, over), func(t *testing.T) {
					got := naming.ShortenName(h, p, in)
					if n := len(fullRef(h, p, got)); n != 255 {
						t.Errorf("full reference of %q is %d characters, want 255", got, n)
					}
					keep := 255 - len(h) - 1 - len(p) - 1 - 16
					want := in[:keep] + "-" + fnvHex(in)
					if got != want {
						t.Errorf("ShortenName = %q, want %q", got, want)
					}
				})
			}
		}
	}
}

func TestShortenName(t *testing.T) {
	cviKeep := 255 - len(host) - 1 - len("cvi/") - 1 - 16 // 207
	// longName is cut at cviKeep; tail replaces the characters just before
	// the cut.
	withTail := func(tail string) string {
		n := nameOfLen(cviKeep + 40)
		return n[:cviKeep-len(tail)] + tail + n[cviKeep:]
	}
	tests := []struct {
		name, host, prefix, in, want string
	}{
		{
			name: "trailing dash trimmed",
			host: host, prefix: "cvi/", in: withTail("-"),
			want: withTail("-")[:cviKeep-1] + "-" + fnvHex(withTail("-")),
		},
		{
			name: "trailing dot trimmed",
			host: host, prefix: "cvi/", in: withTail("."),
			want: withTail(".")[:cviKeep-1] + "-" + fnvHex(withTail(".")),
		},
		{
			name: "trailing underscore trimmed",
			host: host, prefix: "cvi/", in: withTail("_"),
			want: withTail("_")[:cviKeep-1] + "-" + fnvHex(withTail("_")),
		},
		{
			name: "mixed trailing run trimmed",
			host: host, prefix: "cvi/", in: withTail("a-._-."),
			want: withTail("a-._-.")[:cviKeep-5] + "-" + fnvHex(withTail("a-._-.")),
		},
		{
			name: "dash right after the cut is not kept",
			host: host, prefix: "cvi/", in: nameOfLen(cviKeep) + "-" + nameOfLen(30),
			want: nameOfLen(cviKeep) + "-" + fnvHex(nameOfLen(cviKeep)+"-"+nameOfLen(30)),
		},
		{
			// FNV-1a-64("a") = af63dc4c8601ec8c (reference test vector of
			// the FNV specification); the host is so long that nothing of
			// the name can be kept.
			name: "hash only, known value",
			host: strings.Repeat("h", 300), prefix: "cvi/", in: "a",
			want: "af63dc4c8601ec8c",
		},
		{
			// FNV-1a-64("foobar") = 85944171f73967e8 (reference test vector).
			name: "hash only, second known value",
			host: strings.Repeat("h", 250), prefix: "vd/ns/", in: "foobar",
			want: "85944171f73967e8",
		},
		{
			name: "hash only, keep exactly zero",
			host: strings.Repeat("h", 255-1-len("vi/ns/")-1-16), prefix: "vi/ns/", in: nameOfLen(40),
			want: fnvHex(nameOfLen(40)),
		},
		{
			name: "keep one character",
			host: strings.Repeat("h", 255-1-len("vi/ns/")-1-16-1), prefix: "vi/ns/", in: nameOfLen(40),
			want: "a-" + fnvHex(nameOfLen(40)),
		},
		{
			name: "kept part trimmed to one character",
			host: strings.Repeat("h", 255-1-len("vi/ns/")-1-16-2), prefix: "vi/ns/", in: "a.-" + nameOfLen(300),
			want: "a-" + fnvHex("a.-"+nameOfLen(300)),
		},
		{
			name: "hash only when the kept part is all separators",
			host: strings.Repeat("h", 255-1-len("vi/ns/")-1-16-2), prefix: "vi/ns/", in: "-." + nameOfLen(300),
			want: fnvHex("-." + nameOfLen(300)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := naming.ShortenName(tt.host, tt.prefix, tt.in)
			if got != tt.want {
				t.Errorf("ShortenName = %q, want %q", got, tt.want)
			}
			if len(fullRef(tt.host, tt.prefix, got)) > 255 && len(got) != 16 {
				t.Errorf("full reference %d characters > 255", len(fullRef(tt.host, tt.prefix, got)))
			}
			if kept, ok := strings.CutSuffix(got, "-"+fnvHex(tt.in)); ok && strings.TrimRight(kept, "-._") != kept {
				t.Errorf("kept part %q ends with a separator", kept)
			}
		})
	}
}

func TestShortenNameIndependentHash(t *testing.T) {
	in := "ubuntu-" + nameOfLen(240)
	got := naming.ShortenName(host, "cvi/", in)
	h := fnv.New64a()
	h.Write([]byte(in))
	want := fmt.Sprintf("%016x", h.Sum64())
	if !strings.HasSuffix(got, "-"+want) {
		t.Errorf("ShortenName = %q, want the suffix -%s", got, want)
	}
	if len(want) != 16 || strings.ToLower(want) != want {
		t.Errorf("hash %q is not 16 lowercase hex digits", want)
	}
	// The hash is of the name alone, not of the full reference.
	if strings.HasSuffix(got, fnvHex(fullRef(host, "cvi/", in))) {
		t.Errorf("hash is of the full reference, want of the name")
	}
}

func TestRepositoryFor(t *testing.T) {
	long := nameOfLen(250)
	tests := []struct {
		name      string
		kind      naming.Kind
		namespace string
		in        string
		wantPath  string
	}{
		{"cvi", naming.KindCVI, "", "ubuntu", "cvi/ubuntu"},
		{"vi", naming.KindVI, "default", "ubuntu", "vi/default/ubuntu"},
		{"vd", naming.KindVD, "prod", "disk-0", "vd/prod/disk-0"},
		{"cvi long", naming.KindCVI, "", long, "cvi/" + long[:207] + "-" + fnvHex(long)},
		{"vi long", naming.KindVI, "default", long, "vi/default/" + long[:255-26-1-11-17] + "-" + fnvHex(long)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := naming.RepositoryFor(host, tt.kind, tt.namespace, tt.in)
			if repo.Kind != tt.kind || repo.Namespace != tt.namespace {
				t.Errorf("RepositoryFor = %+v", repo)
			}
			if got := repo.Path(); got != tt.wantPath {
				t.Errorf("Path = %q, want %q", got, tt.wantPath)
			}
			if n := len(host + "/" + repo.Path()); n > 255 {
				t.Errorf("full reference %d characters", n)
			}
			// Shortened names are still accepted by the push policy.
			parsed, err := naming.ParseRepository(repo.Path())
			if err != nil {
				t.Fatalf("ParseRepository(%q): %v", repo.Path(), err)
			}
			if parsed != repo {
				t.Errorf("ParseRepository = %+v, want %+v", parsed, repo)
			}
		})
	}
}

func TestParseKind(t *testing.T) {
	tests := []struct {
		in      string
		want    naming.Kind
		wantErr bool
	}{
		{"cvi", naming.KindCVI, false},
		{"CVI", naming.KindCVI, false},
		{"ClusterVirtualImage", naming.KindCVI, false},
		{"clustervirtualimage", naming.KindCVI, false},
		{"vi", naming.KindVI, false},
		{"VirtualImage", naming.KindVI, false},
		{"vd", naming.KindVD, false},
		{"VirtualDisk", naming.KindVD, false},
		{"", "", true},
		{"vm", "", true},
		{"VirtualMachine", "", true},
		{"cvis", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := naming.ParseKind(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseKind(%q) = %q, %v; want %q, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestKind(t *testing.T) {
	tests := []struct {
		kind       naming.Kind
		resource   string
		namespaced bool
		prefix     string
	}{
		{naming.KindCVI, "ClusterVirtualImage", false, "cvi/"},
		{naming.KindVI, "VirtualImage", true, "vi/ns/"},
		{naming.KindVD, "VirtualDisk", true, "vd/ns/"},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			if got := tt.kind.ResourceKind(); got != tt.resource {
				t.Errorf("ResourceKind = %q", got)
			}
			if got := tt.kind.Namespaced(); got != tt.namespaced {
				t.Errorf("Namespaced = %t", got)
			}
			if got := naming.Prefix(tt.kind, "ns"); got != tt.prefix {
				t.Errorf("Prefix = %q", got)
			}
		})
	}
}

func TestParseRepository(t *testing.T) {
	valid := []struct {
		path string
		want naming.Repository
	}{
		{"cvi/ubuntu", naming.Repository{Kind: naming.KindCVI, Name: "ubuntu"}},
		{"cvi/ubuntu-22.04", naming.Repository{Kind: naming.KindCVI, Name: "ubuntu-22.04"}},
		{"cvi/0", naming.Repository{Kind: naming.KindCVI, Name: "0"}},
		{"vi/default/ubuntu", naming.Repository{Kind: naming.KindVI, Namespace: "default", Name: "ubuntu"}},
		{"vi/kube-system/a.b.c", naming.Repository{Kind: naming.KindVI, Namespace: "kube-system", Name: "a.b.c"}},
		{"vd/ns1/disk-0", naming.Repository{Kind: naming.KindVD, Namespace: "ns1", Name: "disk-0"}},
		{"vd/" + nameOfLen(63) + "/" + nameOfLen(253), naming.Repository{Kind: naming.KindVD, Namespace: nameOfLen(63), Name: nameOfLen(253)}},
	}
	for _, tt := range valid {
		t.Run("valid "+tt.path[:min(len(tt.path), 40)], func(t *testing.T) {
			got, err := naming.ParseRepository(tt.path)
			if err != nil {
				t.Fatalf("ParseRepository(%q): %v", tt.path, err)
			}
			if got != tt.want {
				t.Errorf("ParseRepository = %+v, want %+v", got, tt.want)
			}
			if got.Path() != tt.path {
				t.Errorf("Path() = %q, want %q", got.Path(), tt.path)
			}
		})
	}

	invalid := []struct {
		name, path string
	}{
		{"unmanaged prefix", "foo/bar"},
		{"library image", "library/alpine"},
		{"cvi with namespace", "cvi/a/b"},
		// A vi/<X> directory holding _manifests directly is a legacy
		// ClusterVirtualImage repository in storage listings; pushes to
		// vi/<name> without a namespace are refused.
		{"vi without namespace", "vi/x"},
		{"vd without namespace", "vd/x"},
		{"vi too deep", "vi/ns/a/b"},
		{"kind only", "cvi"},
		{"empty", ""},
		{"uppercase kind", "CVI/ubuntu"},
		{"kind name instead of short name", "VirtualImage/ns/x"},
		{"uppercase name", "cvi/Ubuntu"},
		{"uppercase namespace", "vi/Default/ubuntu"},
		{"namespace with a dot", "vi/my.ns/ubuntu"},
		{"namespace too long", "vi/" + nameOfLen(64) + "/x"},
		{"name too long", "cvi/" + nameOfLen(254)},
		{"name starts with dash", "cvi/-x"},
		{"name ends with dot", "cvi/x."},
		{"name with underscore", "cvi/a_b"},
		{"empty name cvi", "cvi/"},
		{"empty name vi", "vi/ns/"},
		{"empty namespace", "vi//x"},
		{"empty namespace vd", "vd//x"},
		{"leading slash", "/cvi/x"},
		{"trailing slash", "cvi/x/"},
	}
	for _, tt := range invalid {
		t.Run("invalid "+tt.name, func(t *testing.T) {
			got, err := naming.ParseRepository(tt.path)
			if err == nil {
				t.Fatalf("ParseRepository(%q) = %+v, want an error", tt.path, got)
			}
			if !errors.Is(err, naming.ErrUnmanagedRepository) {
				t.Errorf("error %v does not wrap ErrUnmanagedRepository", err)
			}
			if got != (naming.Repository{}) {
				t.Errorf("ParseRepository returned %+v with the error", got)
			}
		})
	}
}
