package console

import (
	"context"
	"net/http"
	"sort"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/naming"
)

// Session is the body of GET /api/session: who the console acts as and the
// CSRF token the page sends with every change.
type Session struct {
	User          string   `json:"user"`
	Groups        []string `json:"groups,omitempty"`
	UserError     string   `json:"userError,omitempty"`
	CSRF          string   `json:"csrf"`
	DVCRNamespace string   `json:"dvcrNamespace"`
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	out := Session{CSRF: s.sessions.csrf(r), DVCRNamespace: s.opts.DVCRNamespace}
	ctx, cancel := callContext(r)
	defer cancel()
	review, err := s.core.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		out.UserError = err.Error()
	} else {
		out.User, out.Groups = review.Status.UserInfo.Username, review.Status.UserInfo.Groups
	}
	writeJSON(w, http.StatusOK, out)
}

// Access is the body of GET /api/access: what the page offers. It only
// hides buttons; the API server still decides each request.
type Access struct {
	CreateCVI bool `json:"createCVI"`
	DeleteCVI bool `json:"deleteCVI"`
	CreateVI  bool `json:"createVI"`
	DeleteVI  bool `json:"deleteVI"`
	RunGC     bool `json:"runGC"`
}

func (s *Server) access(w http.ResponseWriter, r *http.Request) {
	ns := r.URL.Query().Get("namespace")
	ctx, cancel := callContext(r)
	defer cancel()
	cvi, vi := v1alpha2.Resources[naming.KindCVI], v1alpha2.Resources[naming.KindVI]
	a := Access{
		CreateCVI: s.allowed(ctx, authzv1.ResourceAttributes{Verb: "create", Group: cvi.Group, Resource: cvi.Resource}),
		DeleteCVI: s.allowed(ctx, authzv1.ResourceAttributes{Verb: "delete", Group: cvi.Group, Resource: cvi.Resource}),
		RunGC:     s.opts.GC != nil && s.mayRunGC(ctx),
	}
	if ns != "" {
		a.CreateVI = s.allowed(ctx, authzv1.ResourceAttributes{Verb: "create", Group: vi.Group, Resource: vi.Resource, Namespace: ns})
		a.DeleteVI = s.allowed(ctx, authzv1.ResourceAttributes{Verb: "delete", Group: vi.Group, Resource: vi.Resource, Namespace: ns})
	}
	writeJSON(w, http.StatusOK, a)
}

// mayRunGC: the user may exec into DVCR's pods, the right that running
// `dvcr-cleaner gc run` in the cluster takes.
func (s *Server) mayRunGC(ctx context.Context) bool {
	return s.allowed(ctx, authzv1.ResourceAttributes{
		Verb: "create", Resource: "pods", Subresource: "exec", Namespace: s.opts.DVCRNamespace,
	})
}

// allowed asks the API server whether the operator may do attrs; a failed
// review counts as no.
func (s *Server) allowed(ctx context.Context, attrs authzv1.ResourceAttributes) bool {
	review, err := s.core.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
		Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs},
	}, metav1.CreateOptions{})
	return err == nil && review.Status.Allowed
}

// Namespaces is the body of GET /api/namespaces. When the user may not list
// namespaces, Error says so and the page offers a text field instead.
type Namespaces struct {
	Items []string `json:"items"`
	Error string   `json:"error,omitempty"`
}

func (s *Server) namespaces(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := callContext(r)
	defer cancel()
	out := Namespaces{Items: []string{}}
	list, err := s.core.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		out.Error = err.Error()
	} else {
		for _, ns := range list.Items {
			out.Items = append(out.Items, ns.Name)
		}
		sort.Strings(out.Items)
	}
	writeJSON(w, http.StatusOK, out)
}
