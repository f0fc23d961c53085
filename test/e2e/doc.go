// Package e2e holds DVCR's end-to-end tests: the real `dvcr serve` and
// `dvcr-cleaner` binaries, driven by real clients (skopeo, the OCI
// conformance suite) and, where the cluster matters, a real kube-apiserver.
package e2e
