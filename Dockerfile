# One image, every role: `callfleet ingress|agent|notifier|campaigner`.
# Not built in this repository's CI (no Docker engine there); the binary is tested as processes.
FROM rust:1.95-bookworm AS build
# The media transport links the system libopus.
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libopus-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p callfleet

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libopus0 && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 callfleet
COPY --from=build /src/target/release/callfleet /usr/local/bin/callfleet
USER callfleet
ENV CALLFLEET_INGRESS__BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["callfleet"]
CMD ["ingress"]
