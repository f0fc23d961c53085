#!/usr/bin/env bash
# Builds bin/helm, the Helm CLI that test/chart runs, from the Go module proxy
# (there is no other way to download it in CI). Nothing is done when bin/helm
# already exists and reports the pinned version.
# Usage: hack/helm.sh   (run from anywhere; the result is <repo root>/bin/helm)
set -euo pipefail

version="v3.19.5"
# Kubernetes version helm's release build stamps in (client-go v0.34 of helm
# v3.19 -> 1.34): the default .Capabilities.KubeVersion of `helm template`
# and the target of `helm lint`'s deprecated-API check. Unstamped, both are 1.20.
kube_major="1"
kube_minor="34"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${root}/bin"
helm="${out}/helm"

if [[ -x "${helm}" ]]; then
	have="$("${helm}" version --template '{{.Version}}' 2>/dev/null || true)"
	if [[ "${have}" == "${version}" ]]; then
		echo "helm: up to date in ${helm} (${version})"
		exit 0
	fi
	echo "helm: ${helm} reports '${have}', want ${version}; rebuilding"
fi

mkdir -p "${out}"
echo "helm: building helm ${version} from the Go module proxy"
start=${SECONDS}
# go install with an @version ignores the main module's go.mod, so helm's own
# pinned dependencies are used and go.mod/go.sum here stay untouched.
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${version}"
for pkg in pkg/lint/rules pkg/chartutil; do
	ldflags+=" -X helm.sh/helm/v3/${pkg}.k8sVersionMajor=${kube_major}"
	ldflags+=" -X helm.sh/helm/v3/${pkg}.k8sVersionMinor=${kube_minor}"
done
GOBIN="${out}" GOFLAGS="${GOFLAGS:-} -trimpath" go install -ldflags "${ldflags}" \
	"helm.sh/helm/v3/cmd/helm@${version}"
echo "helm: built ${helm} in $((SECONDS - start))s"
