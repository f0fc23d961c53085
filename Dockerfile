# syntax=docker/dockerfile:1
# DVCR image: dvcr (the registry) and dvcr-cleaner (the operator CLI, run
# through `kubectl exec deploy/dvcr -- dvcr-cleaner ...`), static binaries on
# distroless. Build: docker build -t ghcr.io/dvcr/dvcr:<version> .

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS=-trimpath
# Modules first, so that the download is cached while only sources change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# Set by BuildKit for multi-platform builds; empty means the build platform.
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -buildvcs=false -ldflags "-s -w" -o /out/dvcr ./cmd/dvcr && \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -buildvcs=false -ldflags "-s -w" -o /out/dvcr-cleaner ./cmd/dvcr-cleaner

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dvcr /out/dvcr-cleaner /usr/local/bin/
# The fixed non-root UID/GID the Helm chart runs the pod with.
USER 64535:64535
# 5000: registry API; 5001: debug (health, Prometheus /metrics).
EXPOSE 5000 5001
ENTRYPOINT ["dvcr"]
CMD ["serve", "--config", "/etc/docker/registry/config.yml"]
