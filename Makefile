# DVCR — build, run and test. `make run` and `make test` work on a fresh
# machine with Go; `make test` installs skopeo and qemu-img when missing.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
GOTEST_FLAGS ?= -count=1 -timeout 45m

.PHONY: all build run test unit e2e testbin tools deps lint bench fuzz demo image clean node cluster cluster-down

all: build

build:
	$(GO) build -o $(BIN)/dvcr ./cmd/dvcr
	$(GO) build -o $(BIN)/dvcr-cleaner ./cmd/dvcr-cleaner

## image: the container image, with no Docker daemon (hack/image): an OCI
## layout of linux/amd64 and linux/arm64 and a docker archive per platform in
## _out/image. PUSH=REGISTRY/REPO:TAG also pushes the index; TAG names the
## image (default ghcr.io/dvcr/dvcr:<chart appVersion>), VERSION overrides
## the version.
PUSH ?=
TAG ?=
VERSION ?=
image:
	$(GO) run ./hack/image $(if $(TAG),--tag $(TAG)) $(if $(VERSION),--version $(VERSION)) $(if $(PUSH),--push $(PUSH))

## run: serve on embedded defaults (storage in ./data, 127.0.0.1:5000)
run: build
	$(BIN)/dvcr serve

## deps: the external tools the tests drive (skopeo, qemu-img)
deps:
	@bash hack/deps.sh

## testbin: kube-apiserver and etcd built from source into bin/k8s
testbin:
	@bash hack/testbin.sh

## node: the test node's kubelet, kube-controller-manager, kube-scheduler,
## kube-proxy, containerd, runc, CNI plugins and crictl, built from source into bin/node
node: testbin
	@bash hack/node.sh

## cluster: a single-node cluster from source in a network namespace of its
## own, DVCR's image imported and its chart installed (docs/cluster.md);
## hack/cluster/run CMD... runs commands against it
cluster: build testbin tools node image
	@hack/cluster/up

## cluster-down: stops the test node and removes everything it left
cluster-down:
	@hack/cluster/down

## tools: test tools built from the Go module proxy (helm, OCI conformance suite, versitygw)
tools:
	@bash hack/helm.sh
	@bash hack/conformance.sh
	@bash hack/versitygw.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags bench ./test/bench/

## test: everything that must pass — unit, end-to-end, conformance, chart,
## the fuzz targets' seed corpora and a short fuzzing run of each
test: deps build testbin tools node image lint
	$(GO) test $(GOTEST_FLAGS) ./...
	$(MAKE) fuzz FUZZTIME=400000x

## fuzz: fuzz the disk format detection, FUZZTIME per target: a count of
## inputs (Nx, default about a minute here), not a duration, because Go 1.26's
## fuzz coordinator can fail a duration-bound run at its deadline with a bare
## "context deadline exceeded" and no failing input (golang/go#75804)
FUZZTIME ?= 3000000x
FUZZ_TARGETS := FuzzInspect FuzzHeaders
fuzz:
	@for f in $(FUZZ_TARGETS); do \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./importer/diskformat/ || exit 1; \
	done

## unit: the fast tests with -race; end-to-end (test/) and the image build
## (hack/image, which needs bin/helm and takes minutes under -race) run in make test
unit:
	$(GO) test -count=1 -race $$($(GO) list ./... | grep -v -e /test/ -e /hack/image)

## demo: the documented workflow on a local control plane, no cluster needed
demo: deps build testbin
	$(GO) run ./hack/demo

## bench: DVCR against upstream distribution (not part of make test)
bench: deps build testbin
	@bash hack/bench.sh

clean:
	rm -rf $(BIN) _out
