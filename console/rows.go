package console

import (
	"fmt"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/naming"
)

// imageKind parses the {kind} of a path: cvi or vi, the kinds the console
// creates.
func imageKind(r *http.Request) (naming.Kind, error) {
	switch k := naming.Kind(r.PathValue("kind")); k {
	case naming.KindCVI, naming.KindVI:
		return k, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownKind, r.PathValue("kind"))
}

// resource is the dynamic client for kind in the request's namespace
// (ignored for cluster images; required for project images).
func (s *Server) resource(kind naming.Kind, namespace string) (dynamic.ResourceInterface, error) {
	gvr := v1alpha2.Resources[kind]
	if !kind.Namespaced() {
		return s.dynamic.Resource(gvr), nil
	}
	if namespace == "" {
		return nil, fmt.Errorf("%w: a project image needs ?namespace=", ErrBadRequest)
	}
	return s.dynamic.Resource(gvr).Namespace(namespace), nil
}

// imageResource is the client of the image a /{kind}/{name} path and its
// ?namespace= name.
func (s *Server) imageResource(r *http.Request) (naming.Kind, dynamic.ResourceInterface, error) {
	kind, err := imageKind(r)
	if err != nil {
		return "", nil, err
	}
	res, err := s.resource(kind, r.URL.Query().Get("namespace"))
	return kind, res, err
}

// getImage reads the image a /{kind}/{name} path names, as the caller.
func (s *Server) getImage(r *http.Request) (*unstructured.Unstructured, error) {
	_, res, err := s.imageResource(r)
	if err != nil {
		return nil, err
	}
	ctx, cancel := callContext(r)
	defer cancel()
	return res.Get(ctx, r.PathValue("name"), metav1.GetOptions{})
}

func gvk(kind naming.Kind) schema.GroupVersionKind {
	return v1alpha2.GroupVersion.WithKind(kind.ResourceKind())
}

// Row is what the page shows of an image: the table's columns and the
// details.
type Row struct {
	UID        string               `json:"uid"`
	Name       string               `json:"name"`
	Namespace  string               `json:"namespace,omitempty"`
	Created    time.Time            `json:"created"`
	Deleting   bool                 `json:"deleting,omitempty"`
	Source     string               `json:"source"` // HTTP, ContainerImage, Upload, ObjectRef
	SourceRef  string               `json:"sourceRef,omitempty"`
	Phase      string               `json:"phase,omitempty"`
	Progress   string               `json:"progress,omitempty"`
	CDROM      *bool                `json:"cdrom,omitempty"`
	Format     string               `json:"format,omitempty"`
	Stored     string               `json:"stored,omitempty"`
	Unpacked   string               `json:"unpacked,omitempty"`
	Speed      string               `json:"speed,omitempty"`
	Registry   string               `json:"registryURL,omitempty"`
	UploadURLs *v1alpha2.UploadURLs `json:"uploadURLs,omitempty"`
	Conditions []metav1.Condition   `json:"conditions,omitempty"`
}

// rowOf converts an image read through the dynamic client. Fields the
// console does not know are ignored; a status the converter cannot read
// still gives a row with the name, so one odd object does not blank the
// table.
func rowOf(obj *unstructured.Unstructured) Row {
	row := Row{
		UID: string(obj.GetUID()), Name: obj.GetName(), Namespace: obj.GetNamespace(),
		Created: obj.GetCreationTimestamp().Time, Deleting: obj.GetDeletionTimestamp() != nil,
	}
	var img v1alpha2.VirtualImage
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &img); err != nil {
		row.Phase = "Unknown"
		return row
	}
	ds, st := img.Spec.DataSource, img.Status
	row.Source, row.SourceRef = string(ds.Type), sourceRef(ds)
	row.Phase, row.Progress, row.CDROM, row.Format = string(st.Phase), st.Progress, st.CDROM, st.Format
	if st.Size != nil {
		row.Stored, row.Unpacked = st.Size.Stored, st.Size.Unpacked
	}
	if st.DownloadSpeed != nil {
		row.Speed = st.DownloadSpeed.Current
	}
	if st.Target != nil {
		row.Registry = st.Target.RegistryURL
	}
	row.UploadURLs, row.Conditions = st.ImageUploadURLs, st.Conditions
	return row
}

// sourceRef is the one line that says where an image comes from.
func sourceRef(ds v1alpha2.DataSource) string {
	switch {
	case ds.HTTP != nil:
		return ds.HTTP.URL
	case ds.ContainerImage != nil:
		return ds.ContainerImage.Image
	case ds.ObjectRef != nil:
		ref := ds.ObjectRef.Kind + " " + ds.ObjectRef.Name
		if ds.ObjectRef.Namespace != "" {
			ref = ds.ObjectRef.Kind + " " + ds.ObjectRef.Namespace + "/" + ds.ObjectRef.Name
		}
		return ref
	}
	return ""
}
