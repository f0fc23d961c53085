//go:build tools

// Package tools pins the Kubernetes control-plane binaries that the envtest
// harness runs, and the kubectl the provisioning tests drive. It lives in its own module so that k8s.io/kubernetes (and its
// etcd 3.7 libraries) never enter the root module's dependency graph.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
