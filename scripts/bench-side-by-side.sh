#!/usr/bin/env bash
# The executor and ingest benchmarks of two revisions, run alternately in one session (before,
# after, then after, before, …) so that whatever else the machine does shifts both alike.
#
#   scripts/bench-side-by-side.sh BEFORE_REV [ROUNDS]        (3 rounds unless given)
#   BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 scripts/bench-side-by-side.sh BEFORE_REV
#
# "after" is this checkout; "before" is BEFORE_REV in a worktree beside it (BENCH_BEFORE_DIR,
# default ../deferral-bench-before), built once. With BENCH_POSTGRES every run gets a fresh
# database on that server, dropped afterwards; without it, a fresh SQLite file.
set -euo pipefail
before="${1:?usage: scripts/bench-side-by-side.sh BEFORE_REV [ROUNDS]}"
rounds="${2:-3}"
cd "$(dirname "$0")/.."
here=$(pwd)
wt="${BENCH_BEFORE_DIR:-$here/../deferral-bench-before}"
[ -d "$wt" ] || git worktree add --detach -q "$wt" "$before"
git -C "$wt" checkout --detach -q "$before"

for tree in "$wt" "$here"; do (cd "$tree" && cargo bench --no-run --bench executor --bench ingest >/dev/null 2>&1); done

run() { # tree, bench: prints the benchmark's table rows
  local tree="$1" bench="$2" db=""
  if [ -n "${BENCH_POSTGRES:-}" ]; then
    db="deferral_bench_$(date +%s%N)"
    psql "$BENCH_POSTGRES/postgres" -qc "CREATE DATABASE $db"
    (cd "$tree" && DATABASE_URL="$BENCH_POSTGRES/$db" cargo bench -q --bench "$bench" 2>/dev/null) | grep '^| ' | grep -v '^| measure | value\|^| run | connections' || true
    psql "$BENCH_POSTGRES/postgres" -qc "DROP DATABASE $db WITH (FORCE)"
  else
    (cd "$tree" && env -u DATABASE_URL cargo bench -q --bench "$bench" 2>/dev/null) | grep '^| ' | grep -v '^| measure | value\|^| run | connections' || true
  fi
}

echo "before: $(git -C "$wt" log -1 --format='%h %s' | cut -c1-70)"
echo "after:  $(git log -1 --format='%h %s' | cut -c1-70)"
echo "backend: ${BENCH_POSTGRES:+PostgreSQL}${BENCH_POSTGRES:-SQLite}"
for i in $(seq 1 "$rounds"); do
  # Odd rounds run "before" first, even rounds "after" first: whichever runs second is not
  # always the one that inherits the first's page cache and pending disk writes.
  sides="before after"; [ $((i % 2)) = 0 ] && sides="after before"
  for bench in executor ingest; do
    for side in $sides; do
      tree=$([ "$side" = before ] && echo "$wt" || echo "$here")
      run "$tree" "$bench" | sed "s/^/round $i $side $bench /"
    done
  done
done
