#!/usr/bin/env bash
# Builds bin/conformance.test, the OCI distribution-spec conformance suite that
# test/e2e's TestOCIConformance runs against `dvcr serve`. The suite is a Go
# test binary of the pinned module in test/conformance (its own go.mod, so the
# suite's dependencies never enter the root module), compiled with `go test -c`
# from the Go module proxy. Nothing is done when bin/conformance.version records
# the version pinned in test/conformance/go.mod and the binary is there.
# Usage: hack/conformance.sh   (run from anywhere; the result is <repo root>/bin/conformance.test)
set -euo pipefail

module="github.com/opencontainers/distribution-spec/conformance"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="${root}/test/conformance"
out="${root}/bin"
bin="${out}/conformance.test"
stamp="${out}/conformance.version"

# The version pinned in test/conformance/go.mod, read without the go command
# (matches both "require M v" and "M v" inside a require block).
version="$(awk -v m="${module}" '
	$1 == "require" && $2 == m { print $3; exit }
	$1 == m && $2 ~ /^v/ { print $2; exit }' "${src}/go.mod")"
if [[ -z "${version}" ]]; then
	echo "conformance: ${module} is not required in ${src}/go.mod" >&2
	exit 1
fi
want="${module} ${version}"

if [[ -x "${bin}" && -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
	echo "conformance: up to date in ${bin} (${version})"
	exit 0
fi

# The stamp goes first so that an interrupted build is never taken as complete.
mkdir -p "${out}"
rm -f "${stamp}"
echo "conformance: building ${module}@${version} into ${bin}"
start=${SECONDS}
# Version is what the suite reports as its commit when the binary carries no
# VCS information (a module built from the proxy never does). In a test binary
# the package under test keeps its import path, hence not main.Version.
(cd "${src}" && GOFLAGS="${GOFLAGS:-} -mod=readonly -trimpath" go test -c \
	-ldflags "-s -w -X ${module}.Version=${version}" -o "${bin}" "${module}")
echo "${want}" >"${stamp}"
echo "conformance: built ${bin} in $((SECONDS - start))s"
