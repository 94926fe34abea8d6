# callfleet: every target here is what CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Pinned test peers and tools (installed into .tools/, git-ignored).
NATS_SERVER_VERSION := v2.12.15
LIVEKIT_SERVER_VERSION := v1.13.5
# livekit-sip is pinned by tests/tools/livekit-sip/go.mod and go.sum (every dependency too).
LIVEKIT_SIP_VERSION := v1.8.0
NATS_PY_VERSION := 2.11.0
# Schemathesis fuzzes the ingress from its OpenAPI document in `make test` (tests/it/fuzz.rs).
SCHEMATHESIS_VERSION := 4.32.5
# The providers' official SDKs, the reference of the conformance tests (tests/it/conformance.rs).
OPENAI_PY_VERSION := 3.57.0
DEEPGRAM_PY_VERSION := 7.17.0
ASSEMBLYAI_PY_VERSION := 1.8.2
CARTESIA_PY_VERSION := 4.2.0
SARVAMAI_PY_VERSION := 0.1.39
ELEVENLABS_PY_VERSION := 2.78.0
# LiveKit's CLI `lk`, the independent peer of `callfleet sip` (tests/it/sip_cli.rs): pinned with
# every dependency by tests/tools/lk/go.mod and go.sum (see tools.go there for its one override).
LK_CLI_VERSION := v2.18.2
# A real local speech recogniser behind the Deepgram stand-in (tests/standins/sphinx/): the
# answering-machine tests hear the callees' words through it (its wheel ships an en-us model).
SPHINX_PY := pocketsphinx==5.0.4 websockets==17.4
CONFORMANCE_PY := openai==$(OPENAI_PY_VERSION) deepgram-sdk==$(DEEPGRAM_PY_VERSION) assemblyai==$(ASSEMBLYAI_PY_VERSION) cartesia==$(CARTESIA_PY_VERSION) sarvamai==$(SARVAMAI_PY_VERSION) elevenlabs==$(ELEVENLABS_PY_VERSION)
# Debian packages: sipp (SIPp 3.6.1, RTP streaming), redis-server, livekit-sip's CGO deps,
# stress-ng (make test-load), and espeak-ng + sox, which speak the callee's words at setup
# (.tools/audio/hello-8k.ulaw), and openssl, which makes the ElevenLabs conformance driver's
# throwaway TLS certificate, and opus-tools + ffmpeg, independent decoders of the recordings
# (tests/it/recording.rs), and flite, which speaks the answering tests' callees (pocketsphinx
# recognises its voices; see tests/tools/callee_audio.sh).
# Debian stable fixes their versions; `make setup` checks sipp and redis versions after install.
# portaudio19-dev: LiveKit's CLI `lk` links the system PortAudio (its vendored copy is a git
# submodule the module proxy's zip does not carry).
APT_PACKAGES := sip-tester redis-server pkg-config libopus-dev libopusfile-dev libsoxr-dev stress-ng espeak-ng sox openssl opus-tools ffmpeg flite portaudio19-dev

# The Kubernetes manifests (deploy/k8s) are validated offline by kubeconform (tests/it/scale/k8s.rs)
# against schemas generated at setup from Kubernetes' OpenAPI document and KEDA's ScaledObject CRD,
# both fetched through the Go module proxy at these versions (deploy/k8s/schemas/generate.py).
KUBECONFORM_VERSION := v0.8.0
K8S_SCHEMA_VERSION := v1.34.4
KEDA_VERSION := v2.18.0

# Silero VAD v6, the voice session's default speech detector (agent.vad), run by tract: the
# ONNX model ships inside PyPI's silero-vad wheel; this is the one variant tract loads
# (op18, no If nodes). Fetched at setup, checked by sha256, never at run time.
SILERO_VAD_VERSION := 6.2.3
SILERO_VAD_SHA256 := 7671cd04b004e9076da0d4a7b1a5aec36adf161c39230c1cb94a4fd5db6bbd28

# LiveKit Agents, the density bench's peer (bench/peers/livekit-agents/): its own venv, every
# package pinned by requirements.txt (livekit-agents 1.8.9 and its openai, deepgram, cartesia and
# silero plugins). Silero's ONNX model ships inside the plugin's wheel; setup checks it is there.
LK_AGENTS_REQ := bench/peers/livekit-agents/requirements.txt

TOOLS := $(CURDIR)/.tools
BIN := $(TOOLS)/bin
NATS_STAMP := $(TOOLS)/stamps/nats-server-$(NATS_SERVER_VERSION)
LIVEKIT_STAMP := $(TOOLS)/stamps/livekit-server-$(LIVEKIT_SERVER_VERSION)
LK_CLI_STAMP := $(TOOLS)/stamps/lk-$(LK_CLI_VERSION)-$(shell cksum < tests/tools/lk/go.sum | cut -d" " -f1)
VENV_STAMP := $(TOOLS)/stamps/venv-nats-py-$(NATS_PY_VERSION)-schemathesis-$(SCHEMATHESIS_VERSION)-sdks-$(shell echo $(CONFORMANCE_PY) $(SPHINX_PY) | cksum | cut -d" " -f1)
SIP_STAMP := $(TOOLS)/stamps/livekit-sip-$(LIVEKIT_SIP_VERSION)
APT_STAMP := $(TOOLS)/stamps/apt-$(shell echo $(APT_PACKAGES) | cksum | cut -d" " -f1)
# The callee's words ("Hello, who is this?"), raw G.711 mu-law, 8 kHz, mono: what SIPp streams
# for numbers ending in 00206 (`make run`'s demo number) and callfleet_rig::callee::write_audio
# copies next to the scenario.
HELLO_TEXT := Hello, who is this?
HELLO_AUDIO := $(TOOLS)/audio/hello-8k.ulaw
# The callee's other words (behaviours 207-210: a person, a voicemail greeting, a call screener,
# an IVR's prompts), spoken by tests/tools/callee_audio.sh (espeak-ng + sox, fixed voices, no
# dither); callfleet_rig::callee::write_audio copies them next to the scenario.
CALLEE_SPEECH := $(addprefix $(TOOLS)/audio/,person-8k.ulaw voicemail-8k.ulaw screener-8k.ulaw ivr-menu-8k.ulaw ivr-sales-8k.ulaw ivr-support-8k.ulaw)
SILERO_MODEL := $(TOOLS)/models/silero_vad.onnx
KUBECONFORM_STAMP := $(TOOLS)/stamps/kubeconform-$(KUBECONFORM_VERSION)
K8S_SCHEMAS_STAMP := $(TOOLS)/stamps/k8s-schemas-$(K8S_SCHEMA_VERSION)-keda-$(KEDA_VERSION)-$(shell cksum < deploy/k8s/schemas/generate.py | cut -d" " -f1)
CALLEE_SPEECH_STAMP := $(TOOLS)/stamps/callee-speech-$(shell cksum < tests/tools/callee_audio.sh | cut -d" " -f1)
LK_AGENTS_STAMP := $(TOOLS)/stamps/lk-agents-venv-$(shell cksum < $(LK_AGENTS_REQ) | cut -d" " -f1)

.PHONY: help setup run test test-load lint bench nats clean-tools

# Where cargo builds (CARGO_TARGET_DIR when set).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(APT_STAMP) $(NATS_STAMP) $(LIVEKIT_STAMP) $(SIP_STAMP) $(LK_CLI_STAMP) $(VENV_STAMP) $(HELLO_AUDIO) $(CALLEE_SPEECH_STAMP) $(SILERO_MODEL) $(KUBECONFORM_STAMP) $(K8S_SCHEMAS_STAMP) $(LK_AGENTS_STAMP) ## Install the pinned test peers: nats-server, livekit-server, livekit-sip, LiveKit's CLI lk, sipp, redis, stress-ng, nats-py, schemathesis, the providers' SDKs, kubeconform and its schemas, LiveKit Agents (the bench's peer); speak the callee's audio

# espeak-ng speaks at 22.05 kHz; sox resamples to 8 kHz mono mu-law without dither (-D), so the
# bytes are the same on every run.
$(HELLO_AUDIO): | $(APT_STAMP)
	mkdir -p $(TOOLS)/audio
	espeak-ng -v en-us -s 150 -w $(TOOLS)/audio/hello.wav "$(HELLO_TEXT)"
	sox -D $(TOOLS)/audio/hello.wav -r 8000 -c 1 -e mu-law -t raw $@.tmp
	rm -f $(TOOLS)/audio/hello.wav
	mv $@.tmp $@

$(CALLEE_SPEECH_STAMP): tests/tools/callee_audio.sh | $(APT_STAMP)
	rm -f $(CALLEE_SPEECH)
	tests/tools/callee_audio.sh $(TOOLS)/audio
	mkdir -p $(TOOLS)/stamps && touch $@

$(SILERO_MODEL): | $(VENV_STAMP)
	mkdir -p $(TOOLS)/models $(TOOLS)/downloads
	$(TOOLS)/venv/bin/pip download --quiet --no-deps --disable-pip-version-check --dest $(TOOLS)/downloads silero-vad==$(SILERO_VAD_VERSION)
	python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("silero_vad/data/silero_vad_op18_ifless.onnx"))' $(TOOLS)/downloads/silero_vad-$(SILERO_VAD_VERSION)-py3-none-any.whl > $@.tmp
	echo "$(SILERO_VAD_SHA256)  $@.tmp" | sha256sum --check --quiet || { rm -f $@.tmp; echo "silero_vad_op18_ifless.onnx from silero-vad $(SILERO_VAD_VERSION) has an unexpected sha256"; exit 1; }
	mv $@.tmp $@

$(APT_STAMP):
	mkdir -p $(TOOLS)/stamps
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) \
	    || { echo "could not install: run \`sudo apt-get install $(APT_PACKAGES)\`"; exit 1; }; \
	fi
	@sipp -v 2>&1 | grep -q 'SIPp v3\.6' || { echo "sipp 3.6 is required (Debian sip-tester): found '$$(sipp -v 2>&1 | grep SIPp)'"; exit 1; }
	@redis-server --version | grep -Eq 'v=([6-9]|[1-9][0-9])\.' || { echo "redis-server >= 6 is required"; exit 1; }
	touch $@

$(SIP_STAMP): tests/tools/livekit-sip/go.mod tests/tools/livekit-sip/go.sum | $(APT_STAMP)
	@command -v go >/dev/null || { echo "Go is required: install Go >= 1.24 (https://go.dev/dl)"; exit 1; }
	mkdir -p $(BIN) $(TOOLS)/stamps
	cd tests/tools/livekit-sip && CGO_ENABLED=1 go build -o $(BIN)/livekit-sip github.com/livekit/sip/cmd/livekit-sip
	touch $@

$(NATS_STAMP):
	@command -v go >/dev/null || { echo "Go is required: install Go >= 1.24 (https://go.dev/dl)"; exit 1; }
	mkdir -p $(BIN) $(TOOLS)/stamps
	GOBIN=$(BIN) go install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)
	touch $@

$(KUBECONFORM_STAMP):
	@command -v go >/dev/null || { echo "Go is required: install Go >= 1.24 (https://go.dev/dl)"; exit 1; }
	mkdir -p $(BIN) $(TOOLS)/stamps
	GOBIN=$(BIN) go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	touch $@

# Kubernetes' swagger.json (k8s.io/kubernetes module) and KEDA's ScaledObject CRD
# (github.com/kedacore/keda/v2 module) from the Go module cache, converted to strict JSON Schemas.
$(K8S_SCHEMAS_STAMP): deploy/k8s/schemas/generate.py | $(VENV_STAMP)
	@command -v go >/dev/null || { echo "Go is required: install Go >= 1.24 (https://go.dev/dl)"; exit 1; }
	mkdir -p $(TOOLS)/stamps
	k8s=$$(go mod download -json k8s.io/kubernetes@$(K8S_SCHEMA_VERSION) | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') && \
	keda=$$(go mod download -json github.com/kedacore/keda/v2@$(KEDA_VERSION) | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') && \
	rm -rf $(TOOLS)/k8s-schemas && \
	$(TOOLS)/venv/bin/python deploy/k8s/schemas/generate.py $$k8s/api/openapi-spec/swagger.json \
	  $$keda/config/crd/bases/keda.sh_scaledobjects.yaml $(TOOLS)/k8s-schemas
	touch $@

$(LIVEKIT_STAMP):
	@command -v go >/dev/null || { echo "Go is required: install Go >= 1.24 (https://go.dev/dl)"; exit 1; }
	mkdir -p $(BIN) $(TOOLS)/stamps $(TOOLS)/gobin-livekit
	GOBIN=$(TOOLS)/gobin-livekit go install github.com/livekit/livekit-server/cmd/server@$(LIVEKIT_SERVER_VERSION)
	mv $(TOOLS)/gobin-livekit/server $(BIN)/livekit-server
	touch $@

$(LK_CLI_STAMP): tests/tools/lk/go.mod tests/tools/lk/go.sum | $(APT_STAMP)
	@command -v go >/dev/null || { echo "Go is required: install Go >= 1.26 (https://go.dev/dl)"; exit 1; }
	mkdir -p $(BIN) $(TOOLS)/stamps
	cd tests/tools/lk && CGO_ENABLED=1 go build -tags portaudio_system -o $(BIN)/lk github.com/livekit/livekit-cli/v2/cmd/lk
	touch $@

$(VENV_STAMP):
	mkdir -p $(TOOLS)/stamps
	python3 -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/pip install --quiet --disable-pip-version-check nats-py==$(NATS_PY_VERSION) schemathesis==$(SCHEMATHESIS_VERSION) $(CONFORMANCE_PY) $(SPHINX_PY)
	touch $@

$(LK_AGENTS_STAMP): $(LK_AGENTS_REQ)
	mkdir -p $(TOOLS)/stamps
	python3 -m venv --clear $(TOOLS)/lk-agents-venv
	$(TOOLS)/lk-agents-venv/bin/python -m pip install --quiet --disable-pip-version-check -r $(LK_AGENTS_REQ)
	@test -s "$$($(TOOLS)/lk-agents-venv/bin/python -c 'import livekit.plugins.silero as s, os; print(os.path.join(os.path.dirname(s.__file__), "resources", "silero_vad.onnx"))')" \
	  || { echo "livekit-plugins-silero's wheel has no resources/silero_vad.onnx"; exit 1; }
	touch $@

run: setup ## Run the whole fleet locally (nats-server, and the local telephony rig when LIVEKIT_URL is unset)
	cargo run -p callfleet -- dev

test: setup ## Build and run every test against the real servers (every suite runs, even after a failure)
	cargo build -p callfleet
	cargo test --workspace --no-fail-fast

test-load: setup ## make test with stress-ng --cpu 2 loading both cores beside it (builds first, unloaded)
	cargo build -p callfleet
	cargo test --workspace --no-run
	@command -v stress-ng >/dev/null || { echo "stress-ng is missing: run \`apt-get install stress-ng\` (make setup does)"; exit 1; }
	stress-ng --cpu 2 --timeout 2h --quiet & load=$$!; trap 'kill $$load 2>/dev/null' EXIT; \
	  start=$$(date +%s); cargo test --workspace --no-fail-fast; rc=$$?; \
	  echo "make test-load: the suite took $$(( $$(date +%s) - start )) s under stress-ng --cpu 2 (exit $$rc)"; exit $$rc

lint: ## rustfmt and clippy, warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: setup ## Benchmarks; writes bench/REPORT.md (with bench/density.md appended), bench/density.md, bench/media.md, bench/voice.md, bench/recording.md, bench/vad.md and bench/amd.md
	cargo build --release -p callfleet -p callfleet-tests --bin callfleet --bin bench
	CALLFLEET_BIN=$(TARGET_DIR)/release/callfleet $(TARGET_DIR)/release/bench --out bench/REPORT.md
	cargo bench -p callfleet-tests --bench density_bench -- sizes=10,25 seconds=30 vads=energy,silero > bench/density.md
	cat bench/density.md >> bench/REPORT.md
	cargo bench -p callfleet-tests --bench media_bench -- sizes=10,50,100 seconds=10 > bench/media.md
	cargo bench -p callfleet-tests --bench recording_bench -- calls=20 seconds=20 > bench/recording.md
	cargo bench -p callfleet-tests --bench vad_bench > bench/vad.md
	cargo bench -p callfleet-tests --bench amd_bench -- seed=2 > bench/amd.md
	cargo bench -p callfleet-tests --bench amd_bench -- seed=2 --oracle >> bench/amd.md
	cargo run -q --release -p callfleet-standins --bin voice_bench > bench/voice.md
	cargo run -q --release -p callfleet-standins --bin voice_bench -- load 10 >> bench/voice.md

nats: ## Regenerate nats/ (topology and JSON Schemas) from the code
	cargo run -q -p callfleet -- export --dir nats

clean-tools: ## Remove installed tools
	rm -rf $(TOOLS)
