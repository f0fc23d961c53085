package naming

import (
	"fmt"
	"hash/fnv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Kind is the resource kind a repository belongs to, by its path prefix.
type Kind string

// The managed repository kinds.
const (
	KindCVI Kind = "cvi"
	KindVI  Kind = "vi"
	KindVD  Kind = "vd"
)

// Kinds lists the managed kinds in report order.
var Kinds = []Kind{KindCVI, KindVI, KindVD}

// ResourceKind is the Kubernetes kind the repository kind stands for.
func (k Kind) ResourceKind() string {
	switch k {
	case KindCVI:
		return "ClusterVirtualImage"
	case KindVI:
		return "VirtualImage"
	case KindVD:
		return "VirtualDisk"
	}
	return string(k)
}

// Namespaced reports whether resources of this kind live in a namespace.
func (k Kind) Namespaced() bool { return k == KindVI || k == KindVD }

// ParseKind accepts a short name (cvi, vi, vd) or a Kubernetes kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if strings.EqualFold(s, string(k)) || strings.EqualFold(s, k.ResourceKind()) {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown kind %q: want cvi, vi or vd", s)
}

// Repository identifies a managed repository.
type Repository struct {
	Kind      Kind
	Namespace string // empty for cvi
	Name      string // name as stored in DVCR (possibly shortened)
}

// Prefix is the path prefix of repositories of this kind and namespace.
func Prefix(kind Kind, namespace string) string {
	if kind.Namespaced() {
		return string(kind) + "/" + namespace + "/"
	}
	return string(kind) + "/"
}

// Path is the repository's path in the registry, e.g. "vi/default/ubuntu".
func (r Repository) Path() string { return Prefix(r.Kind, r.Namespace) + r.Name }

// ParseRepository classifies a repository path. It fails with
// ErrUnmanagedRepository for paths outside the managed prefixes and for
// names Kubernetes would not accept.
func ParseRepository(path string) (Repository, error) {
	parts := strings.Split(path, "/")
	kind, err := ParseKind(parts[0])
	if err != nil || string(kind) != parts[0] {
		return Repository{}, fmt.Errorf("%w: %q", ErrUnmanagedRepository, path)
	}
	repo := Repository{Kind: kind}
	switch {
	case !kind.Namespaced() && len(parts) == 2:
		repo.Name = parts[1]
	case kind.Namespaced() && len(parts) == 3:
		repo.Namespace, repo.Name = parts[1], parts[2]
	default:
		return Repository{}, fmt.Errorf("%w: %q", ErrUnmanagedRepository, path)
	}
	if kind.Namespaced() {
		if errs := validation.IsDNS1123Label(repo.Namespace); len(errs) > 0 {
			return Repository{}, fmt.Errorf("%w: %q: namespace %q: %s", ErrUnmanagedRepository, path, repo.Namespace, errs[0])
		}
	}
	if errs := validation.IsDNS1123Subdomain(repo.Name); len(errs) > 0 {
		return Repository{}, fmt.Errorf("%w: %q: name %q: %s", ErrUnmanagedRepository, path, repo.Name, errs[0])
	}
	return repo, nil
}

// maxReferenceLength is the longest image reference the platform allows.
const maxReferenceLength = 255

// hashLength is the length of the FNV-1a-64 suffix in hex digits.
const hashLength = 16

// ShortenName returns the repository name the platform's controller uses for
// a resource: the name itself when "<registryHost>/<prefix><name>" fits in
// 255 characters, otherwise a prefix of the name, trimmed of trailing "-",
// "." and "_", followed by "-" and the FNV-1a-64 hash of the full name in hex
// (only the hash when nothing of the name can be kept).
func ShortenName(registryHost, prefix, name string) string {
	if len(registryHost)+1+len(prefix)+len(name) <= maxReferenceLength {
		return name
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	sum := fmt.Sprintf("%016x", h.Sum64())
	keep := maxReferenceLength - len(registryHost) - 1 - len(prefix) - 1 - hashLength
	if keep <= 0 {
		return sum
	}
	kept := strings.TrimRight(name[:min(keep, len(name))], "-._")
	if kept == "" {
		return sum
	}
	return kept + "-" + sum
}

// RepositoryFor is the repository of a resource, with the name shortened as
// the platform's controller does.
func RepositoryFor(registryHost string, kind Kind, namespace, name string) Repository {
	return Repository{
		Kind:      kind,
		Namespace: namespace,
		Name:      ShortenName(registryHost, Prefix(kind, namespace), name),
	}
}
