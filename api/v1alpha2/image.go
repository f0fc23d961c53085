package v1alpha2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Image is what ClusterVirtualImage and VirtualImage share: the controller
// handles both through it. Its object methods are controller-runtime's
// client.Object, spelled without controller-runtime.
type Image interface {
	metav1.Object
	runtime.Object
	ImageSpec() *ImageSpec
	ImageStatus() *ImageStatus
}

// ImageSpec implements Image.
func (c *ClusterVirtualImage) ImageSpec() *ImageSpec { return &c.Spec }

// ImageStatus implements Image.
func (c *ClusterVirtualImage) ImageStatus() *ImageStatus { return &c.Status }

// ImageSpec implements Image.
func (v *VirtualImage) ImageSpec() *ImageSpec { return &v.Spec }

// ImageStatus implements Image.
func (v *VirtualImage) ImageStatus() *ImageStatus { return &v.Status }
