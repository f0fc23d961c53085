#!/usr/bin/env bash
# Installs the external programs the end-to-end tests drive, when missing:
# registry clients, disk image and compression tools, a browser.
set -euo pipefail
missing=()
command -v skopeo >/dev/null || missing+=(skopeo)
command -v qemu-img >/dev/null || missing+=(qemu-utils)
[ -x /usr/bin/time ] || missing+=(time) # peak RSS in make bench
command -v xz >/dev/null || missing+=(xz-utils)
command -v zstd >/dev/null || missing+=(zstd)
command -v gzip >/dev/null || missing+=(gzip)
command -v curl >/dev/null || missing+=(curl)
command -v xorriso >/dev/null || missing+=(xorriso) # ISO images for the import tests
[ -x /usr/bin/chromium ] || missing+=(chromium) # the web console tests drive a real browser
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
