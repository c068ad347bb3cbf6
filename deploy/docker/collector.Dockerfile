# mcptap-collector image: multi-stage, small runtime (Debian slim + libpcap0.8), non-root.
#
#   docker build -f deploy/docker/collector.Dockerfile -t mcptap-collector:0.1.0 .
#
# The binary gets the file capability cap_net_raw+ep (capture needs nothing else),
# so the sidecar captures as UID 65532 when the pod adds NET_RAW to the container's
# bounding set; every setuid/setgid bit in the image is removed, so an exec can
# gain nothing else (see deploy/README.md, "Capture privileges").
# Build context: the repository root (see .dockerignore in this directory).

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p mcptap-collector \
 && install -D -m 0755 target/release/mcptap-collector /out/mcptap-collector

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 ca-certificates libcap2-bin \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/mcptap-collector /usr/local/bin/mcptap-collector
# File capability: effective at exec for a non-root user (no ambient caps in Kubernetes).
# No setuid/setgid files: with allowPrivilegeEscalation: true they would be the way up.
RUN setcap cap_net_raw+ep /usr/local/bin/mcptap-collector \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && find / -xdev -type f -perm /6000 -exec chmod ug-s {} + \
 && test -z "$(find / -xdev -type f -perm /6000)" \
 && groupadd --system --gid 65532 mcptap \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin mcptap \
 && install -d -o 65532 -g 65532 -m 0750 /var/spool/mcptap
USER 65532:65532
ENV MCPTAP_SPOOL_DIR=/var/spool/mcptap \
    MCPTAP_ADMIN_ADDR=0.0.0.0:9464 \
    MCPTAP_LOG_FORMAT=json
VOLUME ["/var/spool/mcptap"]
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/mcptap-collector"]
