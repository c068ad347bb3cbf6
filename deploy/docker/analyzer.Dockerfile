# mcptap-analyzer image: multi-stage, distroless-style small runtime, non-root.
#
#   docker build -f deploy/docker/analyzer.Dockerfile -t mcptap-analyzer:0.1.0 .
#
# Build context: the repository root. The analyzer needs no libpcap and no capabilities.

FROM rust:1.95-bookworm AS build
# The workspace builds the collector too when resolving; libpcap-dev keeps `cargo build -p` simple.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p mcptap-analyzer \
 && install -D -m 0755 target/release/mcptap-analyzer /out/mcptap-analyzer

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/mcptap-analyzer /usr/local/bin/mcptap-analyzer
USER 65532:65532
ENV MCPTAP_ANALYZER_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mcptap-analyzer"]
CMD ["serve"]
