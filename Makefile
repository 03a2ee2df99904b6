# Headjack image factory. `make help` lists the targets.
VENV    ?= .venv
BIN     := $(VENV)/bin
HJK     := $(BIN)/hjk-images
PYTEST  := $(BIN)/pytest

.DEFAULT_GOAL := help
.PHONY: help setup images test test-unit test-docker test-e2e lint bench ci-local clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install and start the toolchain (engine, buildx, QEMU, registry server) and the virtualenv
	@bash scripts/setup-host.sh

images: setup ## The main job: build, test and push every variant (embedded registry unless REGISTRY=...)
	$(HJK) release $(if $(REGISTRY),--registry $(REGISTRY))

# The docker and end-to-end tiers run side by side: one waits mostly on the registry and
# small builds, the other on arm64 emulation. They share only keyed caches: each has its
# own state folder, registry and Dev Containers CLI TMPDIR per workspace. Each tier's
# output is printed whole when it ends.
test: setup ## Every test tier: unit first, then docker (fixture images, both platforms) and end-to-end side by side
	$(PYTEST) -m "not docker and not slow" -q
	$(MAKE) --no-print-directory -j2 --output-sync=target test-docker test-e2e

test-unit: ## Fast tier: no Docker engine needed
	$(PYTEST) -m "not docker and not slow" -q

test-docker: ## Docker tier: small fixture variants, amd64 and arm64, against a real registry
	$(PYTEST) -m "docker and not slow" -q --durations=10

test-e2e: ## End-to-end tier on the real variants
	$(PYTEST) -m "slow" -q --durations=15

lint: ## ruff, mypy --strict, and hadolint/yamllint on the rendered Dockerfiles and variants
	$(BIN)/ruff check builder tests variants/checks
	$(BIN)/mypy
	$(HJK) lint

CI_OUT := out/ci-local

ci-local: setup ## The release workflow's sequence on this machine, against the embedded registry
	mkdir -p $(CI_OUT)
	$(HJK) build --platform linux/amd64 --record $(CI_OUT)/record-amd64.json
	$(HJK) build --platform linux/arm64 --record $(CI_OUT)/record-arm64.json
	$(HJK) test --platform linux/amd64 --record $(CI_OUT)/record-amd64.json --results $(CI_OUT)/results-amd64.json --junit $(CI_OUT)/junit-amd64.xml
	$(HJK) test --platform linux/arm64 --record $(CI_OUT)/record-arm64.json --results $(CI_OUT)/results-arm64.json --junit $(CI_OUT)/junit-arm64.xml
	$(HJK) merge $(CI_OUT)/record-amd64.json $(CI_OUT)/record-arm64.json --record $(CI_OUT)/record.json
	$(HJK) publish --record $(CI_OUT)/record.json --results $(CI_OUT)/results-amd64.json --results $(CI_OUT)/results-arm64.json --release-record $(CI_OUT)/release.json

bench: setup ## Benchmarks: cold build vs bake, no-op, one-leaf change, sizes; fresh-machine reuse and cache; what an agent bump costs to pull
	$(BIN)/python bench/build_bench.py
	$(BIN)/python bench/fresh_machine_bench.py
	$(BIN)/python bench/pull_cost_bench.py

clean: ## Remove the virtualenv and build outputs (state under ~/.local/state is kept)
	rm -rf $(VENV) out build *.egg-info
