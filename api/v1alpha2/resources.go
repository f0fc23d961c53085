package v1alpha2

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/dvcr/dvcr/naming"
)

// Group and Version of the platform's API.
const (
	Group   = "virtualization.deckhouse.io"
	Version = "v1alpha2"
	// APIVersion is the apiVersion of the API's objects.
	APIVersion = Group + "/" + Version
)

// GroupVersion of the API.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// Resources maps each kind whose images DVCR holds to its API resource.
var Resources = map[naming.Kind]schema.GroupVersionResource{
	naming.KindCVI: GroupVersion.WithResource("clustervirtualimages"),
	naming.KindVI:  GroupVersion.WithResource("virtualimages"),
	naming.KindVD:  GroupVersion.WithResource("virtualdisks"),
}
