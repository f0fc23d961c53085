package registry

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/auth"
)

// inProcessAuth is the access controller DVCR configures in place of the
// one the configuration names (htpasswd, token): it asks the configured one
// for every request, except those of DVCR's own in-process transport.
// Those carry a context value that no request from the network can carry
// (net/http gives each one a fresh context), so the provisioning controller
// writes to its own registry without credentials of its own.
const inProcessAuth = "dvcr"

// inProcessKey marks a request made through Server.Transport.
type inProcessKey struct{}

func init() {
	if err := auth.Register(inProcessAuth, newInProcessAuth); err != nil {
		panic(fmt.Sprintf("registry: registering the %q access controller: %v", inProcessAuth, err))
	}
}

// wrapAuth returns the auth section that puts inProcessAuth around the
// configured access controller; with none configured it is unchanged.
func wrapAuth(a configuration.Auth) configuration.Auth {
	typ := a.Type()
	if typ == "" || strings.EqualFold(typ, "none") {
		return a
	}
	return configuration.Auth{inProcessAuth: configuration.Parameters{"wrapped": typ, "params": map[string]any(a.Parameters())}}
}

func newInProcessAuth(options map[string]any) (auth.AccessController, error) {
	typ, _ := options["wrapped"].(string)
	params, _ := options["params"].(map[string]any)
	inner, err := auth.GetAccessController(typ, params)
	if err != nil {
		return nil, err
	}
	return inProcessAccess{inner: inner}, nil
}

type inProcessAccess struct{ inner auth.AccessController }

// Authorized grants in-process requests and defers the others.
func (a inProcessAccess) Authorized(r *http.Request, access ...auth.Access) (*auth.Grant, error) {
	if inProcess(r.Context()) {
		return &auth.Grant{User: auth.UserInfo{Name: "dvcr (in process)"}}, nil
	}
	return a.inner.Authorized(r, access...)
}

func inProcess(ctx context.Context) bool {
	v, _ := ctx.Value(inProcessKey{}).(bool)
	return v
}
