# One image, every role: `callfleet ingress|agent|notifier|campaigner`.
# Not built in this repository's CI (no Docker engine there); the binary is tested as processes.
FROM rust:1.95-bookworm AS build
# The media transport links the system libopus.
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libopus-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p callfleet

# Silero VAD's model (agent.vad = "silero", the default): the variant tract runs, from PyPI's
# silero-vad wheel, checked by the sha256 the Makefile pins.
FROM python:3.11-slim AS model
RUN pip download --quiet --no-deps --dest /dl silero-vad==6.2.3 \
    && python -c 'import zipfile,sys; sys.stdout.buffer.write(zipfile.ZipFile("/dl/silero_vad-6.2.3-py3-none-any.whl").read("silero_vad/data/silero_vad_op18_ifless.onnx"))' > /silero_vad.onnx \
    && echo "7671cd04b004e9076da0d4a7b1a5aec36adf161c39230c1cb94a4fd5db6bbd28  /silero_vad.onnx" | sha256sum --check

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libopus0 && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 callfleet
COPY --from=build /src/target/release/callfleet /usr/local/bin/callfleet
COPY --from=model /silero_vad.onnx /usr/local/share/callfleet/silero_vad.onnx
ENV CALLFLEET_AGENT__VAD_MODEL=/usr/local/share/callfleet/silero_vad.onnx
USER callfleet
ENV CALLFLEET_INGRESS__BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["callfleet"]
CMD ["ingress"]
