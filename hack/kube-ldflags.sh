# shellcheck shell=bash
# kube_ldflags VERSION prints the -ldflags of a Kubernetes binary built from
# k8s.io/kubernetes (hack/testbin.sh, hack/node.sh). Built outside the
# Kubernetes release tooling, /version would report v0.0.0-master; clients
# that check the server version expect the real one, and the kubelet
# registers it as the node's version, so stamp it the way the release build does.
kube_ldflags() {
	local minor
	minor="$(echo "$1" | cut -d. -f2)"
	echo "-s -w -X k8s.io/component-base/version.gitVersion=$1" \
		"-X k8s.io/component-base/version.gitMajor=1" \
		"-X k8s.io/component-base/version.gitMinor=${minor}" \
		"-X k8s.io/component-base/version.gitTreeState=clean"
}
