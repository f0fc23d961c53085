#!/usr/bin/env bash
# Benchmark of `dvcr-cleaner gc check` with 10,000 resources in a real
# kube-apiserver (envtest) and 10,000 repositories in filesystem storage:
# median wall time and peak RSS, written to docs/bench-gc-check.md.
# Runs from `make bench` (after build and testbin) or standalone.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

"$GO" build -o bin/dvcr-cleaner ./cmd/dvcr-cleaner
if [[ ! -x bin/k8s/kube-apiserver || ! -x bin/k8s/etcd ]]; then
	bash hack/testbin.sh
fi
"$GO" test -tags bench ./test/bench/ -run TestBenchGCCheck -count=1 -v -timeout 15m
