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
    && useradd --system --create-home --home-dir /var/lib/clearance clearance
COPY --from=build /src/target/release/clearance /usr/local/bin/clearance
COPY workflows /etc/clearance/workflows
ENV CLEARANCE_BIND=0.0.0.0:8080 \
    CLEARANCE_DATA_DIR=/var/lib/clearance/data \
    CLEARANCE_WORKFLOWS=/etc/clearance/workflows \
    CLEARANCE_LOG_FORMAT=json
USER clearance
VOLUME /var/lib/clearance/data
EXPOSE 8080
ENTRYPOINT ["clearance"]
CMD ["serve"]
