//go:build tools

// Package tools pins the Kubernetes control-plane binaries that the envtest
// harness runs, the kubectl the provisioning tests drive, and the node
// components of the test cluster (hack/node.sh). It lives in its own module so that k8s.io/kubernetes (and its
// etcd 3.7 libraries) never enter the root module's dependency graph.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
