# redcloak — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run stop setup test lint build bench deps

## run: set up certificates, password, key and a TLS-only Redis (once), then run redcloak on 127.0.0.1:6379
run:
	@./scripts/run.sh

## stop: stop the redis-server that `make run` started (by PID)
stop:
	@./scripts/stop-redis.sh

## setup: only the secure local Redis setup (no proxy)
setup:
	@./scripts/setup-secure-redis.sh

## deps: install redis-server/redis-tools and Python cryptography when missing
deps:
	@./scripts/ensure-deps.sh

## build: release binary at target/release/redcloak
build:
	$(CARGO) build --release -p redcloak

## test: lint, then the whole suite (unit, differential, end-to-end against real TLS redis-server)
test: deps lint
	$(CARGO) build --workspace --bins
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

## lint: formatting, clippy, and the no-TLS-escape-hatch rule
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@! grep -rnE 'dangerous\(\)|danger::|NoCertificateVerification' crates/ \
		|| (echo "error: TLS verification escape hatch found in crates/ (never allowed)"; exit 1)

## bench: criterion micro-benchmarks + load benchmark (redcloak vs direct mTLS Redis, same machine)
bench: deps
	$(CARGO) bench -p redcloak-benches
	./scripts/bench.sh
