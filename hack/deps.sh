#!/usr/bin/env bash
# Installs the external programs the end-to-end tests drive, when missing.
set -euo pipefail
missing=()
command -v skopeo >/dev/null || missing+=(skopeo)
command -v qemu-img >/dev/null || missing+=(qemu-utils)
[ -x /usr/bin/time ] || missing+=(time) # peak RSS in make bench
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
