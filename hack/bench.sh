#!/usr/bin/env bash
# `make bench`: DVCR against upstream distribution v3.1.2 on this machine, in
# one run, on the same data. Not part of `make test`. Each benchmark writes
# its own section (docs/bench-*.md); this script joins them into
# docs/benchmarks.md with the machine's facts.
#   push/pull: 1 GiB monolithic and chunked push, pull, 20 parallel pushes, RSS
#   gc:        2,000 repositories / ~20,000 blobs vs `registry garbage-collect`
#   gc check:  10,000 resources (real kube-apiserver) and 10,000 repositories
#   import:    `dvcr import` of a 1 GiB raw image over HTTP, raw/gz/xz, against
#              `curl -o` and upstream's monolithic push of the same bytes
#   export:    `dvcr export` of a 1 GiB raw image against `skopeo copy … dir:`;
#              `dvcr export --format raw` of a qcow2 (4 GiB virtual, 1 GiB of
#              data) against skopeo + `tar -x` + `qemu-img convert -O raw`:
#              byte-identical, space taken, peak RSS
#   verify:    `dvcr-cleaner verify` of ~1.4 GiB of blobs against `sha256sum`
#              of the same files (both warm), peak RSS
#   provision: 50 ClusterVirtualImages of 64 MiB (real kube-apiserver, the
#              controller in `dvcr serve`) against `dvcr import` of the same
#              files: overhead per image, API requests, RSS
#   S3:        on versitygw: 1 GiB push and pull against upstream on the same
#              server, 30 clients pulling from one replica and from three; the
#              GC dataset collected by both on a bucket
#
# BENCH_TESTS=REGEX runs only those tests (e.g. BENCH_TESTS=TestBenchImport);
# the other sections are then copied from their last reports, with their dates.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
tests=${BENCH_TESTS:-'TestBenchPushPull|TestBenchGC$|TestBenchGCCheck|TestBenchImport|TestBenchExport|TestBenchVerify|TestBenchProvision|TestBenchS3PushPull|TestBenchGCS3'}
start=$(date +%s)

"$GO" build -o bin/dvcr ./cmd/dvcr
"$GO" build -o bin/dvcr-cleaner ./cmd/dvcr-cleaner
if [[ ! -x bin/k8s/kube-apiserver || ! -x bin/k8s/etcd ]]; then
	bash hack/testbin.sh
fi
bash hack/versitygw.sh
if [[ ! -x bin/registry ]]; then
	echo "bench: building the upstream registry v3.1.2"
	GOBIN="$PWD/bin" "$GO" install github.com/distribution/distribution/v3/cmd/registry@v3.1.2
fi

# A missed target fails its test; the report is written all the same and
# `make bench` exits non-zero afterwards.
mkdir -p bin
touch bin/bench.stamp
set +e
"$GO" test -tags bench ./test/bench/ -run "$tests" -count=1 -v -timeout 45m 2>&1 |
	tee bin/bench.log | grep --line-buffered -v -E '^\s+(\{"level"|[IWE][0-9]{4} )'
status=${PIPESTATUS[0]}
set -e

{
	echo "# Benchmarks: DVCR vs upstream distribution v3.1.2"
	echo
	echo "Written by \`make bench\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, $("$GO" version | cut -d' ' -f3-4). Whole run: $(( $(date +%s) - start ))s${BENCH_TESTS:+ (BENCH_TESTS=$BENCH_TESTS: only those rerun)}."
	echo
	for part in docs/bench-push-pull.md docs/bench-gc.md docs/bench-gc-check.md docs/bench-import.md docs/bench-export.md docs/bench-verify.md docs/bench-provision.md docs/bench-s3.md docs/bench-gc-s3.md; do
		echo
		if [[ $part -nt bin/bench.stamp ]]; then
			sed -e '1s/^# /## /' -e '2,$s/^## /### /' "$part"
		elif [[ -n ${BENCH_TESTS:-} && -f $part ]]; then
			sed -e '1s/^# /## /' -e '2,$s/^## /### /' -e '1a\\n_Not rerun (BENCH_TESTS); from its last report._' "$part"
		else
			echo "## $part: not written by this run (the benchmark failed before its report; see bin/bench.log)"
		fi
	done
} > docs/benchmarks.md
echo "bench: wrote docs/benchmarks.md in $(( $(date +%s) - start ))s (full log: bin/bench.log)"
if (( status != 0 )); then
	echo "bench: some targets were missed or a benchmark failed (exit $status); see the reports in docs/" >&2
fi
exit "$status"
