# nats-geolb developer entry points. `make test` is what CI runs after `make lint`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

CARGO ?= cargo
# Pinned nats-server versions: the previous minor, the lab default and the
# upgrade target. The default is written once, in proto/src/lib.rs.
NATS_DEFAULT_VERSION := $(shell sed -n 's/^pub const DEFAULT_NATS_VERSION: &str = "\(.*\)";$$/\1/p' proto/src/lib.rs)
NATS_VERSIONS ?= 2.11.11 $(NATS_DEFAULT_VERSION) 2.14.6
# SeaweedFS: `weed mini` is the S3 server of the archive tests and benchmarks.
SEAWEEDFS_VERSION ?= 4.48
# nats-py: the third-party peer and timing client of the bench's ack_latency.
NATS_PY_VERSION ?= 2.16.0

.PHONY: tools build static-agent images test lint bench demo fuzz clean

## tools: download the pinned nats-server binaries into .tools/nats-server/<version>/, SeaweedFS into .tools/seaweedfs/<version>/, nats-py into .tools/nats-py/<version>/venv, and Debian's chromium and chromium-driver (the dashboard's browser tests; as root, else the apt command is printed)
tools:
	./scripts/install-nats-server.sh $(NATS_VERSIONS)
	./scripts/install-seaweedfs.sh $(SEAWEEDFS_VERSION)
	./scripts/install-nats-py.sh $(NATS_PY_VERSION)
	./scripts/install-browser.sh

## build: compile every crate and target of the workspace
build:
	$(CARGO) build --workspace --all-targets

# The agent inside the images: one static binary (glibc, static-pie), so the
# images start FROM scratch. A separate --target keeps host builds untouched.
STATIC_TARGET := x86_64-unknown-linux-gnu
STATIC_AGENT := target/$(STATIC_TARGET)/release/geolb-agent
# `run --container` (bollard) is in the images' agent and the tested one, not
# in the plain host build (it would push the idle agent past its RSS target).
AGENT_FEATURES := --features geolb-agent/docker
static-agent:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --target $(STATIC_TARGET) -p geolb-agent --features docker

## images: the geolb-server and geolb-client Docker images (FROM scratch; BASE=nats:... to change), with their sizes
images: tools static-agent
	AGENT_BIN=$(STATIC_AGENT) ./scripts/build-images.sh

## test: build the binaries the tests spawn and the images (when a Docker engine runs), then run every test
test: tools static-agent
	AGENT_BIN=$(STATIC_AGENT) ./scripts/build-images.sh --if-engine
	$(CARGO) build --workspace --bins $(AGENT_FEATURES)
	$(CARGO) test --workspace $(AGENT_FEATURES) -- --test-threads=2

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets $(AGENT_FEATURES) -- -D warnings

## bench: release build, then the benchmark runner (writes target/bench.json)
bench: tools static-agent
	AGENT_BIN=$(STATIC_AGENT) ./scripts/build-images.sh --if-engine
	$(CARGO) build --release --workspace --bins
	$(CARGO) run --release -p geolb-tests --bin bench

## demo: the lab and the four scenarios with short timings, then a summary (about 2 min after the build)
demo: tools
	$(CARGO) build --profile demo -p geolb -p geolb-agent
	./scripts/demo.sh

## fuzz: property-based fuzzing of every wire decoder, the lab config and the GeoDNS's request handling, FUZZ_CASES (200,000) cases a property, at most 5 min
FUZZ_CASES ?= 200000
fuzz:
	$(CARGO) test --release -p geolb-proto --features signing --test fuzz --no-run
	PROPTEST_CASES=$(FUZZ_CASES) timeout 300 $(CARGO) test --release -p geolb-proto --features signing --test fuzz
	$(CARGO) test --release -p geolb --test fuzz_lab_config --no-run
	PROPTEST_CASES=$(FUZZ_CASES) timeout 300 $(CARGO) test --release -p geolb --test fuzz_lab_config
	$(CARGO) test --release -p geolb-geodns --test fuzz_dns --no-run
	PROPTEST_CASES=$(FUZZ_CASES) timeout 300 $(CARGO) test --release -p geolb-geodns --test fuzz_dns

## clean: remove build output (keeps the downloaded .tools/; `rm -rf .tools` to refetch)
clean:
	$(CARGO) clean
