# redcloak — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run stop setup test lint build bench deps fuzz

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

## test: lint, then the whole suite (unit, differential, end-to-end against real TLS redis-server); the end-to-end tests run twice: with shared upstream connections (the default) and with one connection per client (REDCLOAK_SHARED_CONNECTIONS=0)
test: deps lint
	$(CARGO) build --workspace --bins
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast \
		&& echo "== end-to-end tests again, one upstream connection per client" \
		&& REDCLOAK_TEST_SHARED_CONNECTIONS=0 $(CARGO) nextest run -p redcloak-e2e --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast \
		&& REDCLOAK_TEST_SHARED_CONNECTIONS=0 $(CARGO) test -p redcloak-e2e --no-fail-fast; \
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

FUZZ_SECONDS ?= 300
DIFF_COMMANDS ?= 1000000
DIFF_ARGS ?=
FUZZ_TARGETS := redcloak-commands:request_parser redcloak-commands:reply_transform \
	redcloak-commands:encode_request redcloak-crypto:token_decrypt redcloak-crypto:envelope_open

## fuzz: long runs, one after the other: the differential fuzzer against a plain Redis (DIFF_COMMANDS commands, default 1000000; DIFF_ARGS passes more difffuzz flags, e.g. --seed), then every cargo-fuzz target for FUZZ_SECONDS each (default 300; needs nightly Rust, installs cargo-fuzz). Fails if anything was found; crashes stay in crates/*/fuzz/artifacts/
fuzz: deps
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	$(CARGO) build --release -p redcloak -p redcloak-e2e --bins
	@status=0; \
	./target/release/difffuzz --self-check 60 || status=1; \
	./target/release/difffuzz --commands $(DIFF_COMMANDS) $(DIFF_ARGS) || status=1; \
	$(CARGO) +nightly run --quiet --manifest-path crates/redcloak-commands/fuzz/Cargo.toml --example seeds || status=1; \
	for t in $(FUZZ_TARGETS); do \
		crate=$${t%%:*}; target=$${t##*:}; dir=crates/$$crate/fuzz; \
		dict=; [ -f $$dir/dict/commands.dict ] && dict=-dict=fuzz/dict/commands.dict; \
		echo "== cargo fuzz $$crate $$target, $(FUZZ_SECONDS) s (log: $$dir/$$target.log)"; \
		before=$$(ls $$dir/artifacts/$$target 2>/dev/null | wc -l); \
		(cd crates/$$crate && $(CARGO) +nightly fuzz run -O -a -s none $$target -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 $$dict \
			-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1) >$$dir/$$target.log 2>&1 \
			|| status=1; \
		grep -E '^#[0-9]+:' $$dir/$$target.log | tail -1; \
		after=$$(ls $$dir/artifacts/$$target 2>/dev/null | wc -l); \
		echo "   new crash/timeout artifacts: $$((after - before)) (in $$dir/artifacts/$$target)"; \
		[ $$after -eq $$before ] || status=1; \
	done; \
	exit $$status
