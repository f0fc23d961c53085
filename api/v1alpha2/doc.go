// Package v1alpha2 is the virtualization platform's API as DVCR knows it:
// its identity (group virtualization.deckhouse.io, version v1alpha2, the
// resources of the kinds whose images DVCR holds), written here once for
// the garbage collector, the provisioning controller, the console and the
// tools, and the parts of ClusterVirtualImage and VirtualImage that the
// provisioning controller reads and writes. Fields DVCR does not know are
// kept by the API server (the CRDs preserve them), so the controller also
// works with CRDs of the platform that have more fields or no schema at
// all.
//
// It depends on apimachinery only, not on controller-runtime, so that
// dvcr-cleaner can name the resources without linking a controller.
package v1alpha2
