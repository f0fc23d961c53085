package v1alpha2

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/runtime"
)

// The kinds are copied through JSON: they are plain data, small, and
// copied a few times per reconcile, so generated deep-copy code would buy
// nothing but a code generator in the build.

func deepCopyJSON[T any](in *T) *T {
	if in == nil {
		return nil
	}
	data, err := json.Marshal(in)
	if err != nil {
		panic("v1alpha2: marshal of a known type failed: " + err.Error())
	}
	out := new(T)
	if err := json.Unmarshal(data, out); err != nil {
		panic("v1alpha2: unmarshal of a known type failed: " + err.Error())
	}
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *ClusterVirtualImage) DeepCopyObject() runtime.Object { return deepCopyJSON(in) }

// DeepCopyObject implements runtime.Object.
func (in *ClusterVirtualImageList) DeepCopyObject() runtime.Object { return deepCopyJSON(in) }

// DeepCopyObject implements runtime.Object.
func (in *VirtualImage) DeepCopyObject() runtime.Object { return deepCopyJSON(in) }

// DeepCopyObject implements runtime.Object.
func (in *VirtualImageList) DeepCopyObject() runtime.Object { return deepCopyJSON(in) }
