# The two commands of the README, and the benchmarks.
.PHONY: run test test-rust test-e2e test-stall bench-ingest bench-executor bench-stripe-limits bench-console bench-peer bench-compare lint

export LEPTOS_OUTPUT_NAME := deferral

## run: build (release) and start Deferral on http://127.0.0.1:3000 (development: a generated
## webhook secret is printed when STRIPE_WEBHOOK_SECRET is unset; production runs `deferral serve`)
run:
	scripts/setup.sh build
	cargo leptos build --release --precompress
	LEPTOS_SITE_ROOT=target/site target/release/deferral dev

## test: every test: Rust (SQLite, then PostgreSQL), then Playwright in Chromium
test:
	scripts/setup.sh test
	cargo leptos build
	$(MAKE) test-rust test-e2e

test-rust:
	cargo test --workspace
	scripts/drop-test-databases.sh
	# The driver conformance suite checked both drivers in the first pass.
	DEFERRAL_TEST_BACKEND=postgres cargo test --workspace -- --skip every_driver::
	# Several processes on one database: PostgreSQL only, so ignored in both passes and run once here.
	DEFERRAL_TEST_BACKEND=postgres cargo test --test multiprocess -- --ignored
	# Restart the shared PostgreSQL: alone, after everything else that uses it.
	DEFERRAL_TEST_BACKEND=postgres DEFERRAL_TEST_PG_RESTART=1 cargo test --test postgres_resilience
	DEFERRAL_TEST_BACKEND=postgres DEFERRAL_TEST_PG_RESTART=1 cargo test --test postgres_stall restart

## test-stall: PostgreSQL restarted under load with two processes, STALL_RUNS times (20), enough to
## catch a one-in-ten stall. It restarts the server: point it at a cluster of its own, e.g.
##   pg_createcluster 15 stall --port 5434 --start   (trust auth in its pg_hba.conf), then
##   make test-stall DEFERRAL_TEST_PG_CLUSTER="15 stall" DEFERRAL_TEST_POSTGRES=postgres://postgres@127.0.0.1:5434
STALL_RUNS ?= 20
test-stall:
	cargo test --no-run --test postgres_stall
	@passed=0; for i in $$(seq 1 $(STALL_RUNS)); do \
		if DEFERRAL_TEST_BACKEND=postgres DEFERRAL_TEST_PG_RESTART=1 cargo test -q --test postgres_stall restart -- --nocapture >/tmp/test-stall-$$i.log 2>&1; \
		then passed=$$((passed + 1)); echo "run $$i: ok: $$(grep -ho 'all [0-9]* events ran.*' /tmp/test-stall-$$i.log)"; \
		else echo "run $$i: FAILED (/tmp/test-stall-$$i.log)"; fi; \
	done; echo "$$passed of $(STALL_RUNS) runs passed"; test $$passed -eq $(STALL_RUNS)

test-e2e:
	cd end2end && npx playwright test

## bench-*: release-build benchmarks; DATABASE_URL=postgres://… runs them on PostgreSQL
bench-ingest:
	cargo bench --bench ingest

bench-executor:
	cargo bench --bench executor

## bench-peer: Deferral on PostgreSQL against graphile-worker (pinned in benches/peer/, installed with
## npm ci), RUNS rounds (3) of EXECUTIONS no-op jobs (30,000), each run on a fresh database of
## DATABASE_URL_SERVER (postgres://postgres@127.0.0.1:5432): every figure, the medians, the ratio
bench-peer:
	benches/peer/run.sh

## bench-stripe-limits: N re-fetched events against a local Stripe enforcing 100/s live and 25/s per
## endpoint (BENCH_EVENTS=1000; STRIPE_API_RATE as in the README; BENCH_STRIPE_EVENTS=basil: three calls per event)
bench-stripe-limits:
	cargo bench --bench stripe_limits

## bench-compare: the executor and ingest benchmarks of BEFORE (a revision) and this checkout,
## alternately in one run (ROUNDS=3); BENCH_POSTGRES=postgres://… runs them on PostgreSQL
ROUNDS ?= 3
bench-compare:
	scripts/bench-side-by-side.sh $(BEFORE) $(ROUNDS)

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

## bench-console: the console's list page with 1,000,000 executions in SQLite (see docs/benchmarks-console.md)
bench-console:
	cargo test --release --test console_bench -- --ignored --nocapture
