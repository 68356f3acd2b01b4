# Heartbeat Monitor: one small image for every subcommand (agent, dashboard, mock, demo).
#
#   docker build -t heartbeat .
#
# The runtime stage is FROM scratch: the binary, glibc, CA roots and a non-root user (uid 10001);
# time-zone data is compiled into the binary. CI builds the same runtime stage from a binary
# built on the machine (no registry is reachable there):
#   scripts/image-rootfs.sh target/release/heartbeat .ci/work/rootfs
#   DOCKER_BUILDKIT=1 docker build --build-arg ROOTFS=prebuilt -t heartbeat .
ARG ROOTFS=build

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefix web \
 && cargo build --release --locked -p heartbeat \
 && scripts/image-rootfs.sh target/release/heartbeat /rootfs

FROM scratch AS prebuilt
COPY .ci/work/rootfs/ /rootfs/

FROM ${ROOTFS} AS rootfs

FROM scratch AS runtime
COPY --from=rootfs /rootfs/fs/ /
# /data belongs to the runtime user.
COPY --from=rootfs --chown=10001:10001 /rootfs/owned/ /
USER 10001:10001
WORKDIR /data
# MALLOC_ARENA_MAX: glibc keeps one heap per thread by default; two are plenty here and save
# about 2 MiB of resident memory (see docs/BENCHMARKS.md).
ENV SQLITE_DB_PATH=/data/metrics.db \
    DASHBOARD_BIND=0.0.0.0:8000 \
    MALLOC_ARENA_MAX=2 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
VOLUME ["/data"]
EXPOSE 8000
# Default: the agent wrote a cycle recently. The dashboard and mock services of the compose
# files override it with `healthcheck --url`.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/heartbeat", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/heartbeat"]
CMD ["agent"]
