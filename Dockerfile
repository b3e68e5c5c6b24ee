# The gateway image `openclawctl export kubernetes` points at (`--image`,
# default openclaw-gateway:latest): one static binary at /openclaw, run as
# uid 10001 (the manifests' runAsUser), nothing else in the image: no libc,
# no shell, no package manager. TLS is rustls (no OpenSSL).
#
# Build it with scripts/build-image [TAG]: the script links the gateway
# statically (glibc, `-C target-feature=+crt-static`), stages it in
# target/image/, then runs `docker build` on this file. No base image is
# pulled: nothing but the binary and an empty state dir goes in. TMPDIR
# (the gateway's lock dir) lives in the state dir, as in our systemd units.
FROM scratch
COPY target/image/openclaw /openclaw
COPY --chown=10001:10001 target/image/state /state
USER 10001:10001
ENV HOME=/state OPENCLAW_STATE_DIR=/state TMPDIR=/state/tmp
EXPOSE 18789
HEALTHCHECK --interval=30s --timeout=5s CMD ["/openclaw", "gateway", "healthcheck"]
ENTRYPOINT ["/openclaw"]
CMD ["gateway", "run", "--bind", "lan"]
