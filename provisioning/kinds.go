package provisioning

import (
	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/naming"
)

// kindInfo is what differs between the two kinds.
type kindInfo struct {
	kind      naming.Kind
	newObject func() v1alpha2.Image
}

var (
	cviKind = kindInfo{kind: naming.KindCVI, newObject: func() v1alpha2.Image { return &v1alpha2.ClusterVirtualImage{} }}
	viKind  = kindInfo{kind: naming.KindVI, newObject: func() v1alpha2.Image { return &v1alpha2.VirtualImage{} }}
)

// objectKey names a resource of a kind.
type objectKey struct {
	kind      naming.Kind
	namespace string
	name      string
}

func (k objectKey) String() string {
	if k.namespace == "" {
		return string(k.kind) + "/" + k.name
	}
	return string(k.kind) + "/" + k.namespace + "/" + k.name
}

// handledHere tells whether this controller provisions obj: a VirtualImage
// on a PersistentVolumeClaim, and an ObjectRef to a disk or a snapshot, are
// the platform's disk controller's.
func handledHere(obj v1alpha2.Image) bool {
	spec := obj.ImageSpec()
	if spec.Storage == v1alpha2.StoragePersistentVolumeClaim {
		return false
	}
	if spec.DataSource.Type == v1alpha2.DataSourceObjectRef && spec.DataSource.ObjectRef != nil {
		switch spec.DataSource.ObjectRef.Kind {
		case "VirtualDisk", "VirtualDiskSnapshot":
			return false
		}
	}
	return true
}
