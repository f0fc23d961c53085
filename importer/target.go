package importer

import (
	"fmt"
	"strings"

	"github.com/dvcr/dvcr/naming"
)

// ParseRepository reads a REPOSITORY argument (cvi/NAME, vi/NS/NAME,
// vd/NS/NAME) and shortens the name as the platform's controller does for
// registryHost. A ":TAG" suffix is returned apart.
func ParseRepository(arg, registryHost string) (repo naming.Repository, tag string, err error) {
	path, tag := splitTag(arg)
	r, err := naming.ParseRepository(path)
	if err != nil {
		return naming.Repository{}, "", fmt.Errorf("%w: %w (want cvi/NAME, vi/NAMESPACE/NAME or vd/NAMESPACE/NAME)", ErrBadRepository, err)
	}
	return naming.RepositoryFor(registryHost, r.Kind, r.Namespace, r.Name), tag, nil
}

// splitTag cuts a ":tag" off the last path element.
func splitTag(arg string) (path, tag string) {
	slash := strings.LastIndex(arg, "/")
	if colon := strings.LastIndex(arg, ":"); colon > slash {
		return arg[:colon], arg[colon+1:]
	}
	return arg, ""
}
