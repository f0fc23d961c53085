#!/usr/bin/env bash
# `make bench`: DVCR against upstream distribution v3.1.2 on this machine, in
# one run, on the same data. Not part of `make test`. Each benchmark writes
# its own section (docs/bench-*.md); this script joins them into
# docs/benchmarks.md with the machine's facts.
#   push/pull: 1 GiB monolithic and chunked push, pull, 20 parallel pushes, RSS
#   gc:        2,000 repositories / ~20,000 blobs vs `registry garbage-collect`
#   gc check:  10,000 resources (real kube-apiserver) and 10,000 repositories
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
start=$(date +%s)

"$GO" build -o bin/dvcr ./cmd/dvcr
"$GO" build -o bin/dvcr-cleaner ./cmd/dvcr-cleaner
if [[ ! -x bin/k8s/kube-apiserver || ! -x bin/k8s/etcd ]]; then
	bash hack/testbin.sh
fi
if [[ ! -x bin/registry ]]; then
	echo "bench: building the upstream registry v3.1.2"
	GOBIN="$PWD/bin" "$GO" install github.com/distribution/distribution/v3/cmd/registry@v3.1.2
fi

"$GO" test -tags bench ./test/bench/ -run 'TestBenchPushPull|TestBenchGC$|TestBenchGCCheck' -count=1 -v -timeout 15m

{
	echo "# Benchmarks: DVCR vs upstream distribution v3.1.2"
	echo
	echo "Written by \`make bench\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, $("$GO" version | cut -d' ' -f3-4). Whole run: $(( $(date +%s) - start ))s."
	echo
	for part in docs/bench-push-pull.md docs/bench-gc.md docs/bench-gc-check.md; do
		[[ -f $part ]] || continue
		echo
		sed -e '1s/^# /## /' -e '2,$s/^## /### /' "$part"
	done
} > docs/benchmarks.md
echo "bench: wrote docs/benchmarks.md in $(( $(date +%s) - start ))s"
