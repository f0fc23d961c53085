// Package node tests DVCR where its users run it: a single-node Kubernetes
// cluster built from source (hack/cluster/up: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kubelet, kube-proxy, containerd,
// runc, CNI plugins) in a network namespace of its own, the image of
// `make image` imported into containerd and the chart installed with the
// commands of README.md. Every check goes through hack/cluster/run, the
// entry point a person uses: kubectl, helm and curl as a user runs them.
//
// The package starts the cluster once for all its tests (TestMain) and
// removes it at the end; DVCR_CLUSTER_KEEP=1 leaves it running for a look.
package node
