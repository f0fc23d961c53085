package console

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/naming"
)

// CreateRequest is the body of POST /api/images/{kind}: the three choices
// of the "Create image" menu.
type CreateRequest struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// Source is HTTP, ContainerImage or Upload.
	Source string `json:"source"`
	URL    string `json:"url,omitempty"`   // HTTP
	Image  string `json:"image,omitempty"` // ContainerImage
}

// object is the image the request asks for. Names and URLs are left to the
// API server's validation, whose wording the page shows; only what the
// console itself must understand is checked here.
func (req CreateRequest) object(kind naming.Kind) (*unstructured.Unstructured, error) {
	ds := v1alpha2.DataSource{Type: v1alpha2.DataSourceType(req.Source)}
	switch ds.Type {
	case v1alpha2.DataSourceHTTP:
		if strings.TrimSpace(req.URL) == "" {
			return nil, fmt.Errorf("%w: an HTTP image needs a URL", ErrBadRequest)
		}
		ds.HTTP = &v1alpha2.HTTPSource{URL: strings.TrimSpace(req.URL)}
	case v1alpha2.DataSourceContainerImage:
		if strings.TrimSpace(req.Image) == "" {
			return nil, fmt.Errorf("%w: a container image source needs an image reference", ErrBadRequest)
		}
		ds.ContainerImage = &v1alpha2.ContainerImage{Image: strings.TrimSpace(req.Image)}
	case v1alpha2.DataSourceUpload:
	default:
		return nil, fmt.Errorf("%w: source %q (want HTTP, ContainerImage or Upload)", ErrBadRequest, req.Source)
	}
	spec := v1alpha2.ImageSpec{DataSource: ds}
	if kind == naming.KindVI {
		spec.Storage = v1alpha2.StorageContainerRegistry
	}
	specMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&spec)
	if err != nil {
		return nil, fmt.Errorf("console: encoding the spec: %w", err)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{"spec": specMap}}
	obj.SetGroupVersionKind(gvk(kind))
	obj.SetName(req.Name)
	if kind.Namespaced() {
		obj.SetNamespace(req.Namespace)
	}
	return obj, nil
}

// maxCreateBody bounds the JSON of a create request.
const maxCreateBody = 64 << 10

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	kind, err := imageKind(r)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	var req CreateRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxCreateBody)).Decode(&req); err != nil {
		writeAPIError(w, fmt.Errorf("%w: %w", ErrBadRequest, err))
		return
	}
	obj, err := req.object(kind)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	res, err := s.resource(kind, req.Namespace)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	ctx, cancel := callContext(r)
	defer cancel()
	created, err := res.Create(ctx, obj, metav1.CreateOptions{FieldManager: "dvcr-console"})
	if err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, rowOf(created))
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	_, res, err := s.imageResource(r)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	ctx, cancel := callContext(r)
	defer cancel()
	if err := res.Delete(ctx, r.PathValue("name"), metav1.DeleteOptions{}); err != nil {
		writeAPIError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Details is the body of GET /api/images/{kind}/{name}.
type Details struct {
	Row
	Events []Event `json:"events"`
	// EventsError says why events are missing (e.g. RBAC forbids listing
	// them), instead of an empty list that would look like "none".
	EventsError string `json:"eventsError,omitempty"`
}

// Event is one event about an image.
type Event struct {
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Count   int32  `json:"count"`
	Last    string `json:"last"`
}

func (s *Server) details(w http.ResponseWriter, r *http.Request) {
	kind, res, err := s.imageResource(r)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	ns := r.URL.Query().Get("namespace")
	ctx, cancel := callContext(r)
	defer cancel()
	obj, err := res.Get(ctx, r.PathValue("name"), metav1.GetOptions{})
	if err != nil {
		writeAPIError(w, err)
		return
	}
	d := Details{Row: rowOf(obj), Events: []Event{}}
	// Events of a cluster-scoped object are recorded in "default".
	if !kind.Namespaced() {
		ns = corev1.NamespaceDefault
	}
	list, err := s.core.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.uid", string(obj.GetUID())).String(),
	})
	if err != nil {
		d.EventsError = err.Error()
	} else {
		for _, e := range list.Items {
			d.Events = append(d.Events, eventOf(e))
		}
	}
	writeJSON(w, http.StatusOK, d)
}

func eventOf(e corev1.Event) Event {
	last := e.LastTimestamp.Time
	if last.IsZero() {
		last = e.EventTime.Time
	}
	if last.IsZero() {
		last = e.CreationTimestamp.Time
	}
	return Event{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: e.Count, Last: last.UTC().Format("2006-01-02T15:04:05Z")}
}
