# The two commands of the README, and the benchmarks.
.PHONY: run test test-rust test-e2e bench-ingest bench-executor bench-stripe-limits bench-console lint

export LEPTOS_OUTPUT_NAME := deferral

## run: build (release) and start Deferral on http://127.0.0.1:3000 (development: a generated
## webhook secret is printed when STRIPE_WEBHOOK_SECRET is unset; production runs `deferral serve`)
run:
	scripts/setup.sh build
	cargo leptos build --release
	LEPTOS_SITE_ROOT=target/site target/release/deferral dev

## test: every test: Rust (SQLite, then PostgreSQL), then Playwright in Chromium
test:
	scripts/setup.sh test
	cargo leptos build
	$(MAKE) test-rust test-e2e

test-rust:
	cargo test --workspace
	scripts/drop-test-databases.sh
	DEFERRAL_TEST_BACKEND=postgres cargo test --workspace
	# Restarts the shared PostgreSQL: alone, after everything else that uses it.
	DEFERRAL_TEST_BACKEND=postgres DEFERRAL_TEST_PG_RESTART=1 cargo test --test postgres_resilience

test-e2e:
	cd end2end && npx playwright test

## bench-*: release-build benchmarks; DATABASE_URL=postgres://… runs them on PostgreSQL
bench-ingest:
	cargo bench --bench ingest

bench-executor:
	cargo bench --bench executor

## bench-stripe-limits: N re-fetched events against a local Stripe enforcing 100/s live and 25/s per
## endpoint (BENCH_EVENTS=1000; STRIPE_API_RATE as in the README)
bench-stripe-limits:
	cargo bench --bench stripe_limits

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

## bench-console: the console's list page with 1,000,000 executions in SQLite (see docs/benchmarks-console.md)
bench-console:
	cargo test --release --test console_bench -- --ignored --nocapture
