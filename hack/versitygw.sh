#!/usr/bin/env bash
# Builds bin/versitygw, the S3 server (posix backend) the replica tests run
# on loopback, from the Go module proxy. Nothing is done when bin/versitygw
# already reports the pinned version.
# Usage: hack/versitygw.sh   (run from anywhere; the result is <repo root>/bin/versitygw)
set -euo pipefail

version="v1.8.0"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${root}/bin"
bin="${out}/versitygw"

# Its --version says "git" when built by go install; the module version is
# in the binary's build information.
if [[ -x "${bin}" ]] && go version -m "${bin}" 2>/dev/null | grep -qE "^\s+mod\s+github.com/versity/versitygw\s+${version}\b"; then
	echo "versitygw: up to date in ${bin} (${version})"
	exit 0
fi
mkdir -p "${out}"
echo "versitygw: building ${version} from the Go module proxy"
start=${SECONDS}
# go install with an @version uses versitygw's own go.mod; ours stays untouched.
GOBIN="${out}" GOFLAGS="${GOFLAGS:-} -trimpath" go install "github.com/versity/versitygw/cmd/versitygw@${version}"
echo "versitygw: built ${bin} in $((SECONDS - start))s"
