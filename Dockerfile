# Build: libpq and OpenSSL are compiled in (pq-sys/openssl-sys features), so
# the runtime image needs neither.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY templates templates
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/clearance clearance \
    && install -d -o clearance -g clearance -m 0700 /var/lib/clearance/data
COPY --from=build /src/target/release/clearance /usr/local/bin/clearance
COPY workflows /etc/clearance/workflows
ENV CLEARANCE_BIND=0.0.0.0:8080 \
    CLEARANCE_DATA_DIR=/var/lib/clearance/data \
    CLEARANCE_WORKFLOWS=/etc/clearance/workflows \
    CLEARANCE_LOG_FORMAT=json
USER clearance
# The data folder exists and is clearance's before it becomes a volume: a new
# named volume copies its owner, so Clearance (not root) can write there.
# tests/api/image.rs starts the binary the same way, as a user that is not
# root on a folder made like this one.
VOLUME /var/lib/clearance/data
EXPOSE 8080
# The slim image has no curl: the binary asks /readyz itself.
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
    CMD ["clearance", "health", "--ready"]
ENTRYPOINT ["clearance"]
CMD ["serve"]
