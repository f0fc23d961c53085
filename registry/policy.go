package registry

import (
	"net/http"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/gorilla/mux"

	"github.com/dvcr/dvcr/naming"
)

// Policy refuses writes to repositories outside the managed prefixes with
// 400 and an OCI NAME_INVALID error, unless unmanaged repositories are
// allowed. Reads are never refused: an unknown repository simply is not found.
type Policy struct {
	AllowUnmanaged bool
	router         *mux.Router
}

// NewPolicy returns the repository policy for routes under prefix (the
// registry's http.prefix, usually empty).
func NewPolicy(allowUnmanaged bool, prefix string) *Policy {
	return &Policy{AllowUnmanaged: allowUnmanaged, router: v2.RouterWithPrefix(prefix)}
}

// Middleware applies the policy in front of next.
func (p *Policy) Middleware(next http.Handler) http.Handler {
	if p.AllowUnmanaged {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsWrite(r) {
			if name, ok := p.repositoryName(r); ok {
				if _, err := naming.ParseRepository(name); err != nil {
					_ = errcode.ServeJSON(w, errcode.ErrorCodeNameInvalid.WithMessage(err.Error()).WithDetail(name))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// repositoryName extracts the repository name the distribution router sees.
func (p *Policy) repositoryName(r *http.Request) (string, bool) {
	var match mux.RouteMatch
	if !p.router.Match(r, &match) {
		return "", false
	}
	name, ok := match.Vars["name"]
	return name, ok
}
