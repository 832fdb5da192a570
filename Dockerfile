# syntax=docker/dockerfile:1
# RUNE container image: the static (musl) `rune` binary on distroless static, non-root.
# One image serves every role: `rune serve` (default), `rune operator run`, `rune ui`,
# and the charts' backup hook (`rune db backup`). Build notes: docs/operations/image.md.
#
#   docker build -t ghcr.io/rune-bench/rune:0.1.0 .

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools file \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# The same script CI uses (it also refuses a dynamically linked result).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target/static,id=rune-static \
    cp "$(scripts/build-static.sh)" /rune \
 && /rune --version
# The data directory, owned by the non-root user (a volume mounted there keeps it).
RUN mkdir -p /out/data && chown 65532:65532 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="rune" \
      org.opencontainers.image.description="RUNE: benchmark AI models, inference endpoints and agents on reliability use cases" \
      org.opencontainers.image.source="https://github.com/rune-bench/rune" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /rune /usr/local/bin/rune
COPY --from=build --chown=65532:65532 /out/data /data
# The database is /data/jobs.db, the path the rollback runbook uses.
ENV RUNE_HOME=/data \
    RUNE_DATABASE_URL=sqlite:///data/jobs.db \
    RUNE_API_HOST=0.0.0.0
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/rune"]
CMD ["serve"]
