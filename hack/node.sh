#!/usr/bin/env bash
# Builds the node components of the test cluster (make cluster) into bin/node:
# kubelet, kube-controller-manager, kube-scheduler and kube-proxy from
# k8s.io/kubernetes (the tools module that also builds kube-apiserver),
# containerd 2.x and its runc shim, runc, the CNI plugins and crictl from the
# Go module proxy. Nothing can be downloaded in CI but Go modules and Debian
# packages, so all of it is compiled here; the build is skipped when
# bin/node/VERSIONS records the pinned versions.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${root}/bin/node"
stamp="${out}/VERSIONS"
tools="${root}/test/tools"

containerd_version="v2.4.2"
runc_version="v1.5.3"
cni_version="v1.10.0"
crictl_version="v1.37.0"
kube_version="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3; exit }' "${tools}/go.mod")"

want="kubernetes ${kube_version}
containerd ${containerd_version}
runc ${runc_version}
cni-plugins ${cni_version}
crictl ${crictl_version}"

if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
	echo "node: up to date in ${out}"
	exit 0
fi

missing=()
# runc is built with seccomp (the chart asks for RuntimeDefault); iptables,
# conntrack and ip for kube-proxy and the CNI plugins; busybox for the pause
# image of the pod sandboxes.
[[ -e /usr/include/seccomp.h ]] || missing+=(libseccomp-dev)
command -v iptables >/dev/null || missing+=(iptables)
command -v conntrack >/dev/null || missing+=(conntrack)
command -v ip >/dev/null || missing+=(iproute2)
[[ -x /usr/bin/busybox ]] || missing+=(busybox-static)
if [[ ${#missing[@]} -gt 0 ]]; then
	echo "node: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

mkdir -p "${out}"
rm -f "${stamp}"
start=${SECONDS}

source "${root}/hack/kube-ldflags.sh"
ldflags="$(kube_ldflags "${kube_version}")"
for cmd in kubelet kube-controller-manager kube-scheduler kube-proxy; do
	t=${SECONDS}
	(cd "${tools}" && go build -trimpath -ldflags "${ldflags}" \
		-o "${out}/${cmd}" "k8s.io/kubernetes/cmd/${cmd}")
	echo "node: ${cmd} ${kube_version} built in $((SECONDS - t))s"
done

# go install with @version builds each tool against its own go.mod.
gobin() { GOBIN="${out}" GOFLAGS="-trimpath" go install "$@"; }

t=${SECONDS}
gobin -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=${containerd_version}" \
	"github.com/containerd/containerd/v2/cmd/containerd@${containerd_version}" \
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@${containerd_version}" \
	"github.com/containerd/containerd/v2/cmd/ctr@${containerd_version}"
echo "node: containerd ${containerd_version} built in $((SECONDS - t))s"

t=${SECONDS}
CGO_ENABLED=1 gobin -tags seccomp -ldflags "-X main.version=${runc_version#v}" \
	"github.com/opencontainers/runc@${runc_version}"
echo "node: runc ${runc_version} built in $((SECONDS - t))s"

t=${SECONDS}
mkdir -p "${out}/cni"
GOBIN="${out}/cni" GOFLAGS="-trimpath" go install -ldflags "-s -w" \
	"github.com/containernetworking/plugins/plugins/main/bridge@${cni_version}" \
	"github.com/containernetworking/plugins/plugins/ipam/host-local@${cni_version}" \
	"github.com/containernetworking/plugins/plugins/main/loopback@${cni_version}" \
	"github.com/containernetworking/plugins/plugins/meta/portmap@${cni_version}"
echo "node: CNI plugins ${cni_version} built in $((SECONDS - t))s"

t=${SECONDS}
gobin -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${crictl_version}" \
	"sigs.k8s.io/cri-tools/cmd/crictl@${crictl_version}"
echo "node: crictl ${crictl_version} built in $((SECONDS - t))s"

echo "${want}" >"${stamp}"
echo "node: done in $((SECONDS - start))s; binaries in ${out}"
