# The gateway image `openclawctl export kubernetes` points at
# (`--image`, default openclaw-gateway:latest): one static binary at
# /openclaw, run as uid 10001 (the manifests' runAsUser), nothing else in
# the image. Build from the repository root:
#   docker build -t openclaw-gateway:latest .
# The binary is linked against musl, statically: no libc, no shell, no
# package manager in the final image; TLS is rustls (no OpenSSL).
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev gcc
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p openclaw-gateway --bin openclaw \
 && cp target/release/openclaw /openclaw \
 && mkdir -m 0700 /state && chown 10001:10001 /state

FROM scratch
COPY --from=build /openclaw /openclaw
COPY --from=build --chown=10001:10001 /state /state
USER 10001:10001
ENV HOME=/state OPENCLAW_STATE_DIR=/state
EXPOSE 18789
HEALTHCHECK --interval=30s --timeout=5s CMD ["/openclaw", "gateway", "healthcheck"]
ENTRYPOINT ["/openclaw"]
CMD ["gateway", "run", "--bind", "lan"]
