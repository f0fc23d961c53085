# syntax=docker/dockerfile:1
# DVCR image. The supported recipe is `make image` (hack/image): it needs no
# Docker daemon, builds linux/amd64 and linux/arm64 reproducibly (same commit,
# same digest) and can push (`make image PUSH=REGISTRY/REPO:TAG`). This
# Dockerfile builds the same content for those who want `docker build`:
# static dvcr and dvcr-cleaner (the operator CLI, run through
# `kubectl exec deploy/dvcr -- dvcr-cleaner ...`) in /usr/local/bin on scratch,
# with the CA certificates, the passwd and group of hack/image/rootfs (root,
# nobody, dvcr 64535:64535), /tmp (1777), /etc/docker/registry, and
# /var/run/dvcr and /var/lib/registry owned by dvcr. Its digest differs from
# `make image`'s (timestamps, layer order).
# Build: docker build --build-arg VERSION=<version> --build-arg REVISION=$(git rev-parse HEAD) \
#          --build-arg CREATED=$(git log -1 --format=%cI HEAD) -t ghcr.io/dvcr/dvcr:<version> .

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0
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
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false -ldflags "-s -w" \
        -o /rootfs/usr/local/bin/ ./cmd/dvcr ./cmd/dvcr-cleaner
# The root filesystem, as hack/image lays it out.
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/etc/docker/registry /rootfs/tmp \
        /rootfs/var/run/dvcr /rootfs/var/lib/registry && \
    cp hack/image/rootfs/etc/passwd hack/image/rootfs/etc/group /rootfs/etc/ && \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ && \
    chown -R 0:0 /rootfs && \
    chmod 0755 /rootfs/usr/local/bin/dvcr /rootfs/usr/local/bin/dvcr-cleaner && \
    chmod 0644 /rootfs/etc/passwd /rootfs/etc/group /rootfs/etc/ssl/certs/ca-certificates.crt && \
    chmod 1777 /rootfs/tmp && \
    chown 64535:64535 /rootfs/var/run/dvcr /rootfs/var/lib/registry

FROM scratch
# COPY --from a stage keeps the owners and modes set above.
COPY --from=build /rootfs/ /
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=
LABEL org.opencontainers.image.source="https://github.com/dvcr/dvcr" \
      org.opencontainers.image.url="https://github.com/dvcr/dvcr" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.title="DVCR" \
      org.opencontainers.image.description="DVCR, the in-cluster OCI registry of virtual machine disk images, with an integrated garbage collector"
ENV PATH=/usr/local/bin:/usr/bin:/bin
WORKDIR /
# The fixed non-root UID/GID the Helm chart runs the pod with.
USER 64535:64535
# 5000: registry API; 5001: debug (health, Prometheus /metrics).
EXPOSE 5000 5001
ENTRYPOINT ["dvcr"]
CMD ["serve", "--config", "/etc/docker/registry/config.yml"]
