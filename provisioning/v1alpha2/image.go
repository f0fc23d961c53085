package v1alpha2

import "sigs.k8s.io/controller-runtime/pkg/client"

// Image is what ClusterVirtualImage and VirtualImage share: the controller
// handles both through it.
type Image interface {
	client.Object
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
