package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// DataSourceType names where an image comes from.
type DataSourceType string

// Data source types.
const (
	DataSourceHTTP           DataSourceType = "HTTP"
	DataSourceContainerImage DataSourceType = "ContainerImage"
	DataSourceUpload         DataSourceType = "Upload"
	DataSourceObjectRef      DataSourceType = "ObjectRef"
)

// Storage kinds of a VirtualImage.
const (
	StorageContainerRegistry     = "ContainerRegistry"
	StoragePersistentVolumeClaim = "PersistentVolumeClaim"
)

// Phase of an image.
type Phase string

// Phases.
const (
	PhasePending           Phase = "Pending"
	PhaseWaitForUserUpload Phase = "WaitForUserUpload"
	PhaseProvisioning      Phase = "Provisioning"
	PhaseReady             Phase = "Ready"
	PhaseFailed            Phase = "Failed"
	PhaseTerminating       Phase = "Terminating"
)

// DataSource is spec.dataSource.
type DataSource struct {
	Type           DataSourceType  `json:"type,omitempty"`
	HTTP           *HTTPSource     `json:"http,omitempty"`
	ContainerImage *ContainerImage `json:"containerImage,omitempty"`
	ObjectRef      *ObjectRef      `json:"objectRef,omitempty"`
}

// HTTPSource is dataSource.http.
type HTTPSource struct {
	URL      string    `json:"url,omitempty"`
	CABundle []byte    `json:"caBundle,omitempty"` // PEM, base64 in JSON
	Checksum *Checksum `json:"checksum,omitempty"`
}

// Checksum of the downloaded bytes, hex.
type Checksum struct {
	MD5    string `json:"md5,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// ContainerImage is dataSource.containerImage.
type ContainerImage struct {
	Image           string           `json:"image,omitempty"`
	ImagePullSecret *ImagePullSecret `json:"imagePullSecret,omitempty"`
	CABundle        []byte           `json:"caBundle,omitempty"`
}

// ImagePullSecret names a kubernetes.io/dockerconfigjson secret.
type ImagePullSecret struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// ObjectRef is dataSource.objectRef.
type ObjectRef struct {
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// ImageSpec is the spec of both kinds; Storage is VirtualImage's only.
type ImageSpec struct {
	Storage    string     `json:"storage,omitempty"`
	DataSource DataSource `json:"dataSource"`
}

// ImageStatus is the status of both kinds.
type ImageStatus struct {
	Phase              Phase              `json:"phase,omitempty"`
	Progress           string             `json:"progress,omitempty"`
	Size               *ImageSize         `json:"size,omitempty"`
	Format             string             `json:"format,omitempty"`
	CDROM              *bool              `json:"cdrom,omitempty"` // a pointer, so false is written too
	Target             *Target            `json:"target,omitempty"`
	ImageUploadURLs    *UploadURLs        `json:"imageUploadURLs,omitempty"`
	DownloadSpeed      *DownloadSpeed     `json:"downloadSpeed,omitempty"`
	ImportDuration     string             `json:"importDuration,omitempty"`
	SourceUID          string             `json:"sourceUID,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
}

// ImageSize is status.size.
type ImageSize struct {
	Stored        string `json:"stored,omitempty"`
	StoredBytes   string `json:"storedBytes,omitempty"`
	Unpacked      string `json:"unpacked,omitempty"`
	UnpackedBytes string `json:"unpackedBytes,omitempty"`
}

// Target is status.target.
type Target struct {
	RegistryURL string `json:"registryURL,omitempty"`
}

// UploadURLs is status.imageUploadURLs.
type UploadURLs struct {
	External  string `json:"external,omitempty"`
	InCluster string `json:"inCluster,omitempty"`
}

// DownloadSpeed is status.downloadSpeed.
type DownloadSpeed struct {
	Avg          string `json:"avg,omitempty"`
	AvgBytes     string `json:"avgBytes,omitempty"`
	Current      string `json:"current,omitempty"`
	CurrentBytes string `json:"currentBytes,omitempty"`
}

// Condition types and reasons.
const (
	ConditionDatasourceReady = "DatasourceReady"
	ConditionReady           = "Ready"

	ReasonProvisioning             = "Provisioning"
	ReasonProvisioningPostponed    = "ProvisioningPostponed"
	ReasonProvisioningFailed       = "ProvisioningFailed"
	ReasonProvisioningRetrying     = "ProvisioningRetrying"
	ReasonWaitForUserUpload        = "WaitForUserUpload"
	ReasonWaitForUserUploadTimeout = "WaitForUserUploadTimeout"
	ReasonImageLost                = "ImageLost"
	ReasonReady                    = "Ready"
	ReasonSourceNotReady           = "SourceNotReady"
	ReasonSourceAvailable          = "SourceAvailable"
	ReasonSpecImmutable            = "SpecChangedAfterReady"
	ReasonQueued                   = "WaitingForImportSlot"
)

// ClusterVirtualImage is a cluster-wide disk image stored in DVCR.
type ClusterVirtualImage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ImageSpec   `json:"spec"`
	Status            ImageStatus `json:"status,omitempty"`
}

// ClusterVirtualImageList is a list of ClusterVirtualImage.
type ClusterVirtualImageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterVirtualImage `json:"items"`
}

// VirtualImage is a namespaced disk image.
type VirtualImage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ImageSpec   `json:"spec"`
	Status            ImageStatus `json:"status,omitempty"`
}

// VirtualImageList is a list of VirtualImage.
type VirtualImageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualImage `json:"items"`
}

// AddToScheme registers the kinds.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ClusterVirtualImage{}, &ClusterVirtualImageList{}, &VirtualImage{}, &VirtualImageList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
