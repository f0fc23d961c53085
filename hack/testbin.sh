#!/usr/bin/env bash
# Builds the control-plane binaries that test/envtest runs: bin/k8s/kube-apiserver
# and bin/k8s/etcd, and bin/k8s/kubectl for the provisioning tests. Neither can be downloaded in CI, so both are compiled from the
# Go module proxy, from the pinned modules test/tools (kube-apiserver) and
# test/tools/etcd (etcd). The build takes minutes on a fresh machine, so it is
# skipped when bin/k8s/VERSIONS records the versions pinned in those go.mod files.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${root}/bin/k8s"
stamp="${out}/VERSIONS"
tools="${root}/test/tools"

# pinned MODULE GOMOD prints the version of MODULE required by GOMOD. Reading
# go.mod directly keeps the up-to-date check free of network and go commands.
pinned() {
	local v
	# Matches both "require M v1" and "M v1" inside a require block.
	v="$(awk -v m="$1" '
		$1 == "require" && $2 == m { print $3; exit }
		$1 == m && $2 ~ /^v/ { print $2; exit }' "$2")"
	if [[ -z "${v}" ]]; then
		echo "testbin: $1 is not required in $2" >&2
		exit 1
	fi
	echo "${v}"
}

kube_version="$(pinned k8s.io/kubernetes "${tools}/go.mod")"
etcd_version="$(pinned go.etcd.io/etcd/server/v3 "${tools}/etcd/go.mod")"
want="kube-apiserver ${kube_version}
kubectl ${kube_version}
etcd ${etcd_version}"

if [[ -x "${out}/kube-apiserver" && -x "${out}/kubectl" && -x "${out}/etcd" && -f "${stamp}" ]] &&
	[[ "$(cat "${stamp}")" == "${want}" ]]; then
	echo "testbin: up to date in ${out} (kube-apiserver ${kube_version}, etcd ${etcd_version})"
	exit 0
fi

# The stamp goes first so that an interrupted build is never taken as complete.
mkdir -p "${out}"
rm -f "${stamp}"
start=${SECONDS}

source "${root}/hack/kube-ldflags.sh"
ldflags="$(kube_ldflags "${kube_version}")"

echo "testbin: building kube-apiserver ${kube_version} (several minutes on a fresh machine)"
t=${SECONDS}
(cd "${tools}" && go build -trimpath -ldflags "${ldflags}" \
	-o "${out}/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
echo "testbin: kube-apiserver built in $((SECONDS - t))s"

echo "testbin: building kubectl ${kube_version}"
t=${SECONDS}
(cd "${tools}" && go build -trimpath -ldflags "${ldflags}" \
	-o "${out}/kubectl" k8s.io/kubernetes/cmd/kubectl)
echo "testbin: kubectl built in $((SECONDS - t))s"

echo "testbin: building etcd ${etcd_version}"
t=${SECONDS}
(cd "${tools}/etcd" && go build -trimpath -ldflags "-s -w" -o "${out}/etcd" .)
echo "testbin: etcd built in $((SECONDS - t))s"

echo "${want}" >"${stamp}"
echo "testbin: done in $((SECONDS - start))s; binaries in ${out}"
