// Package envtest runs a real Kubernetes control plane (kube-apiserver and
// etcd, started by controller-runtime's envtest) for tests of DVCR's
// Kubernetes integration. The virtualization CRDs the chart ships
// (charts/dvcr/files/crds) are installed, so tests can create ClusterVirtualImages, VirtualImages and
// VirtualDisks, give users exactly the rights under test, hand a kubeconfig
// to a CLI subprocess, and stop the API server mid-test to simulate an
// unreachable cluster.
//
// The binaries are built from source by `make testbin` into bin/k8s. When they
// are missing the test fails with that hint: a Kubernetes test that silently
// skips proves nothing.
package envtest
