// Package chart tests the Helm chart in charts/dvcr with the real helm CLI:
// `helm lint`, `helm template` with default and non-default values (key
// fields of the rendered objects, decoded strictly into the Kubernetes API
// types; golden files of whole renders), the values schema, and `helm
// install`/`upgrade`/`uninstall` against a real kube-apiserver for what only
// a cluster shows: the PVC growing in place, the bcrypt hash of chart-made
// credentials surviving upgrades, the storage class guard and the kept PVC.
//
// helm is built from the Go module proxy by `hack/helm.sh` into bin/helm and
// the control plane by `make testbin` into bin/k8s. When either is missing the
// tests fail with that hint; nothing is skipped.
//
// Rewrite the golden files under testdata after an intended chart change with
//
//	go test ./test/chart/ -run TestGolden -update
package chart
