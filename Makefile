# redcloak — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run stop setup test lint build bench deps

## run: secure setup when needed (certs, password, key, TLS-only Redis), then redcloak in the foreground on 127.0.0.1:6379
run:
	@./scripts/run.sh

## stop: stop what `make run` started, by PID: redcloak, then Redis (certs, .env and data stay)
stop:
	@./scripts/stop.sh

## setup: only the secure setup (certs/, .env, TLS-only Redis); idempotent, see scripts/setup-secure-redis.sh --help
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

## bench: criterion micro-benchmarks + load benchmarks (redcloak vs direct mTLS Redis, interleaved; writes docs/performance.md; then scripts, counters, BullMQ, Lock and limits); BENCH_QUICK=1: only a short load benchmark
bench: deps
	@if [ "$${BENCH_QUICK:-0}" != 1 ]; then $(CARGO) bench -p redcloak-benches; fi
	./scripts/bench.sh
	./scripts/bench-scripts.sh
	./scripts/bench-apps.sh
