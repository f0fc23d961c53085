package provisioning

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/importer/diskformat"
	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/importer/source"
	"github.com/dvcr/dvcr/naming"
)

// errSourceNotReady: an ObjectRef source that is missing or not Ready yet;
// the image waits in Pending.
var errSourceNotReady = errors.New("source image not ready")

// errBadSpec: the data source cannot work as written; retrying cannot help.
var errBadSpec = errors.New("bad data source")

// plan is how to import one generation of an image.
type plan struct {
	src       string
	opts      importer.Options
	sourceUID string
	cleanup   func()
}

// planImport turns spec.dataSource into an import source and options.
func (c *Controller) planImport(ctx context.Context, obj v1alpha2.Image) (*plan, error) {
	ds := obj.ImageSpec().DataSource
	p := &plan{opts: c.importOptions(), cleanup: func() {}}
	switch ds.Type {
	case v1alpha2.DataSourceHTTP:
		return p, planHTTP(p, ds.HTTP)
	case v1alpha2.DataSourceContainerImage:
		return p, c.planContainerImage(ctx, p, obj, ds.ContainerImage)
	case v1alpha2.DataSourceObjectRef:
		return p, c.planObjectRef(ctx, p, obj, ds.ObjectRef)
	}
	return nil, fmt.Errorf("%w: spec.dataSource.type %q: want HTTP, ContainerImage, Upload or ObjectRef", errBadSpec, ds.Type)
}

// importOptions are the options every import of the controller shares.
func (c *Controller) importOptions() importer.Options {
	return importer.Options{
		Registry:          "dvcr.local",
		RegistryHost:      c.opts.RegistryHost,
		RegistryTransport: c.opts.Registry,
		TempDir:           c.opts.TempDir,
	}
}

func planHTTP(p *plan, h *v1alpha2.HTTPSource) error {
	if h == nil || h.URL == "" {
		return fmt.Errorf("%w: spec.dataSource.http.url is missing", errBadSpec)
	}
	if !strings.HasPrefix(h.URL, "http://") && !strings.HasPrefix(h.URL, "https://") {
		return fmt.Errorf("%w: spec.dataSource.http.url %q: want an http:// or https:// URL", errBadSpec, h.URL)
	}
	p.src = h.URL
	p.opts.CABundle = h.CABundle
	if h.Checksum != nil {
		if h.Checksum.MD5 != "" {
			p.opts.Checksums = append(p.opts.Checksums, "md5:"+h.Checksum.MD5)
		}
		if h.Checksum.SHA256 != "" {
			p.opts.Checksums = append(p.opts.Checksums, "sha256:"+h.Checksum.SHA256)
		}
	}
	return nil
}

func (c *Controller) planContainerImage(ctx context.Context, p *plan, obj v1alpha2.Image, ci *v1alpha2.ContainerImage) error {
	if ci == nil || ci.Image == "" {
		return fmt.Errorf("%w: spec.dataSource.containerImage.image is missing", errBadSpec)
	}
	p.src = "docker://" + strings.TrimPrefix(ci.Image, "docker://")
	p.opts.CABundle = ci.CABundle
	if ci.ImagePullSecret == nil || ci.ImagePullSecret.Name == "" {
		return nil
	}
	ns := ci.ImagePullSecret.Namespace
	if ns == "" {
		ns = obj.GetNamespace()
	}
	if ns == "" {
		return fmt.Errorf("%w: spec.dataSource.containerImage.imagePullSecret.namespace is needed for a ClusterVirtualImage", errBadSpec)
	}
	path, err := c.writeAuthFile(ctx, types.NamespacedName{Namespace: ns, Name: ci.ImagePullSecret.Name})
	if err != nil {
		return err
	}
	p.opts.AuthFile = path
	p.cleanup = func() { _ = os.Remove(path) }
	return nil
}

// writeAuthFile copies a docker config secret to a private temporary file
// for the import (removed by the plan's cleanup).
func (c *Controller) writeAuthFile(ctx context.Context, key types.NamespacedName) (string, error) {
	var secret corev1.Secret
	if err := c.reader.Get(ctx, key, &secret); err != nil {
		return "", fmt.Errorf("imagePullSecret %s: %w", key, err)
	}
	data := secret.Data[corev1.DockerConfigJsonKey]
	if len(data) == 0 && len(secret.Data[corev1.DockerConfigKey]) > 0 {
		data = []byte(`{"auths":` + string(secret.Data[corev1.DockerConfigKey]) + `}`)
	}
	if len(data) == 0 {
		return "", fmt.Errorf("%w: imagePullSecret %s has neither %s nor %s", errBadSpec, key, corev1.DockerConfigJsonKey, corev1.DockerConfigKey)
	}
	f, err := os.CreateTemp(c.opts.TempDir, "dvcr-auth-*.json")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func (c *Controller) planObjectRef(ctx context.Context, p *plan, obj v1alpha2.Image, ref *v1alpha2.ObjectRef) error {
	if ref == nil || ref.Name == "" {
		return fmt.Errorf("%w: spec.dataSource.objectRef.name is missing", errBadSpec)
	}
	var k kindInfo
	ns := ""
	switch ref.Kind {
	case "ClusterVirtualImage":
		k = cviKind
	case "VirtualImage":
		k, ns = viKind, ref.Namespace
		if ns == "" {
			ns = obj.GetNamespace()
		}
		if ns == "" {
			return fmt.Errorf("%w: spec.dataSource.objectRef.namespace is needed to refer to a VirtualImage", errBadSpec)
		}
	default:
		return fmt.Errorf("%w: spec.dataSource.objectRef.kind %q: want ClusterVirtualImage or VirtualImage", errBadSpec, ref.Kind)
	}
	src := k.newObject()
	if err := c.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, src); err != nil {
		return fmt.Errorf("%w: %s %s: %w", errSourceNotReady, ref.Kind, joinName(ns, ref.Name), err)
	}
	if src.ImageSpec().Storage == v1alpha2.StoragePersistentVolumeClaim {
		return fmt.Errorf("%w: %s %s is stored on a PersistentVolumeClaim, not in DVCR", errBadSpec, ref.Kind, joinName(ns, ref.Name))
	}
	if src.ImageStatus().Phase != v1alpha2.PhaseReady {
		return fmt.Errorf("%w: %s %s is %s", errSourceNotReady, ref.Kind, joinName(ns, ref.Name), phaseOrNone(src.ImageStatus().Phase))
	}
	p.src = "dvcr://" + naming.RepositoryFor(c.opts.RegistryHost, k.kind, ns, ref.Name).Path()
	p.sourceUID = string(src.GetUID())
	return nil
}

func joinName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func phaseOrNone(p v1alpha2.Phase) string {
	if p == "" {
		return "not provisioned yet"
	}
	return "in phase " + string(p)
}

// permanent tells failures that a retry cannot fix: the image itself was
// refused, or the spec is wrong.
func permanent(err error) bool {
	for _, e := range []error{
		errBadSpec, importer.ErrChecksumMismatch, importer.ErrBadChecksum, importer.ErrBadRepository, importer.ErrNotDiskImage,
		diskformat.ErrUnsupportedFormat, diskformat.ErrBackingFile, diskformat.ErrExternalDataFile, diskformat.ErrUnknownFeatures,
		diskformat.ErrExtentFile, diskformat.ErrAmbiguous, diskformat.ErrTruncated, diskformat.ErrCorrupt, diskformat.ErrEmpty,
		source.ErrUnsupportedScheme, source.ErrNoDiskFile,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// needsPerson tells failures that leave the image Failed: a person must
// act (fix the spec, the source, the credentials, or free space in DVCR)
// before it can be Ready. Retrying may still help once they have (a file
// put in place, space freed), so only the permanent ones are not retried.
// The others — network errors, 5xx, DVCR read-only for a collection, a
// manifest refused because a collection took a blob — are transient: the
// image stays Provisioning and the import is retried.
func needsPerson(err error) bool {
	if permanent(err) {
		return true
	}
	for _, e := range []error{source.ErrNotFound, source.ErrUnauthorized, registryclient.ErrStorageFull, registryclient.ErrUnauthorized, registryclient.ErrNotFound} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// failureMessage says what failed and what to do.
func failureMessage(err error, retryIn time.Duration) string {
	msg := err.Error()
	switch {
	case errors.Is(err, importer.ErrChecksumMismatch):
		msg += ". Check the URL and spec.dataSource.http.checksum, then change the spec"
	case permanent(err):
		msg += ". Fix the source or the spec; the import restarts when the spec changes"
	case errors.Is(err, source.ErrUnauthorized):
		msg += ". Check the credentials (spec.dataSource.containerImage.imagePullSecret)"
	case errors.Is(err, source.ErrNotFound):
		msg += ". Check that the source exists"
	}
	if retryIn > 0 {
		msg += fmt.Sprintf("; retrying in %s", retryIn.Round(time.Second))
	}
	return msg
}
