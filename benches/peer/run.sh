#!/usr/bin/env bash
# make bench-peer: Deferral's executor against graphile-worker on the same PostgreSQL, side by side.
#
# Each round runs three benchmarks, each on a database of its own created just before it and
# dropped just after (deferral_peer_<random>_<round>_<system>):
#   graphile-batched  graphile-worker, local queue 500 and batched completions (bench.mjs batched)
#   deferral          benches/executor.rs, release build (the no-op executions/s it prints)
#   graphile-default  graphile-worker with its default settings (bench.mjs default)
# The order rotates from round to round, so on a noisy machine no system always goes first.
# Prints every run, the medians and the ratio Deferral / graphile-worker batched.
#
# Env: DATABASE_URL_SERVER (postgres://postgres@127.0.0.1:5432; a role that may create
# databases), RUNS (3 rounds), EXECUTIONS (30000 jobs per run), WORKERS (512: Deferral's
# workers and graphile-worker's concurrentJobs), POOL_SIZE (graphile-worker's connections, 20:
# as many as Deferral opens). Logs of every run stay in a temporary folder, printed at the end.
# DROP_INDEXES=a,b,… adds a fourth system to each round, deferral-lean: Deferral with those
# PostgreSQL indexes dropped after its migrations (an experiment: what they cost the executor).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

server="${DATABASE_URL_SERVER:-postgres://postgres@127.0.0.1:5432}"
server="${server%/}"
runs="${RUNS:-3}"
jobs="${EXECUTIONS:-30000}"
workers="${WORKERS:-512}"
pool="${POOL_SIZE:-20}"
logs="$(mktemp -d "${TMPDIR:-/tmp}/bench-peer.XXXXXX")"
tag="deferral_peer_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"

# graphile-worker, at the version package-lock.json pins.
if [ ! -d "$here/node_modules/graphile-worker" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  echo "Installing graphile-worker (npm ci in benches/peer)"
  npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
fi

# Deferral's executor benchmark, built once; each run starts the binary itself.
echo "Building Deferral's executor benchmark (release)"
cargo bench --bench executor --no-run --message-format=json-render-diagnostics >"$logs/cargo.json"
deferral_bench="$(node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
  for (const l of lines) {
    if (!l.startsWith("{")) continue;
    const m = JSON.parse(l);
    if (m.reason === "compiler-artifact" && m.target.name === "executor" && m.executable) console.log(m.executable);
  }' "$logs/cargo.json")"
[ -x "$deferral_bench" ] || { echo "could not find the executor benchmark binary" >&2; exit 1; }

psql_server() { psql "$server/postgres" -X -q -v ON_ERROR_STOP=1 "$@"; }
drop_all() {
  psql_server -Atc "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE);', datname) FROM pg_database WHERE datname LIKE '${tag}\_%'" \
    | psql_server >/dev/null || true
}
trap drop_all EXIT

# The commit measured, marked when the code under test differs from it.
commit="$(git rev-parse --short HEAD)"
git diff --quiet HEAD -- src app domain migrations benches/executor.rs benches/support.rs Cargo.toml Cargo.lock \
  || commit+=" with uncommitted changes"
echo
echo "bench-peer: $jobs no-op jobs per run, $runs rounds, $(nproc) cores, commit $commit, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "PostgreSQL: $(psql_server -Atc 'SHOW server_version'), autovacuum $(psql_server -Atc 'SHOW autovacuum'), synchronous_commit $(psql_server -Atc 'SHOW synchronous_commit')"
echo "graphile-worker $(node -p 'require(process.argv[1]).version' "$here/node_modules/graphile-worker/package.json"), Node $(node --version); concurrency $workers, $pool connections"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

systems=(graphile-batched deferral graphile-default)
[ -z "${DROP_INDEXES:-}" ] || systems+=(deferral-lean)
count=${#systems[@]}
declare -A result
run_one() { # round system
  local round=$1 system=$2 db="${tag}_$1_${2//-/_}" log="$logs/$1-$2.log" rate drop=""
  psql_server -c "CREATE DATABASE $db"
  case $system in
    deferral*)
      [ "$system" = deferral ] || drop="$DROP_INDEXES"
      BENCH_DROP_INDEXES="$drop" DATABASE_URL="$server/$db" EXECUTIONS=$jobs WORKERS=$workers "$deferral_bench" --bench >"$log" 2>&1 || true
      rate="$(sed -nE 's/^\| run [0-9]+ no-op executions.*\| ([0-9]+)\/s \|$/\1/p' "$log")" ;;
    graphile-*)
      JOBS=$jobs CONCURRENCY=$workers POOL_SIZE=$pool node "$here/bench.mjs" "$server/$db" "${system#graphile-}" >"$log" 2>&1 || true
      rate="$(sed -nE 's/^RESULT [a-z]+ ([0-9]+)$/\1/p' "$log")" ;;
  esac
  psql_server -c "DROP DATABASE $db WITH (FORCE)"
  [ -n "$rate" ] || { echo "$system: no figure, see $log" >&2; cat "$log" >&2; exit 1; }
  result[$round,$system]=$rate
  printf '  round %d  %-17s %8s/s\n' "$round" "$system" "$rate"
}

for round in $(seq 1 "$runs"); do
  for k in $(seq 0 $((count - 1))); do
    run_one "$round" "${systems[$(( (k + round - 1) % count ))]}"
  done
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
letter() { case $1 in graphile-batched) echo B ;; deferral) echo D ;; graphile-default) echo G ;; deferral-lean) echo L ;; esac; }

echo
header="| round | order | graphile-worker batched | Deferral (PostgreSQL) | graphile-worker default |"
lean() { [ "$count" = 4 ]; }
lean && header+=" Deferral, indexes dropped |"
echo "$header Deferral / batched |$(lean && echo ' lean / batched |')"
echo "|---|---|---|---|---|---|$(lean && echo '---|---|')"
declare -A column
row() { # label order B D G L
  local line="| $1 | $2 | $3/s | $4/s | $5/s |"
  lean && line+=" $6/s |"
  line+=" $(ratio "$4" "$3")× |"
  lean && line+=" $(ratio "$6" "$3")× |"
  echo "$line"
}
for round in $(seq 1 "$runs"); do
  order=""
  for k in $(seq 0 $((count - 1))); do
    s="${systems[$(( (k + round - 1) % count ))]}"
    order+="${order:+, }$(letter "$s")"
    column[$s]+="${result[$round,$s]} "
  done
  row "$round" "$order" "${result[$round,graphile-batched]}" "${result[$round,deferral]}" "${result[$round,graphile-default]}" "${result[$round,deferral-lean]:-}"
done
# shellcheck disable=SC2086 # the columns are lists of numbers
b=$(median ${column[graphile-batched]}) d=$(median ${column[deferral]}) g=$(median ${column[graphile-default]})
l=""
# shellcheck disable=SC2086
lean && l=$(median ${column[deferral-lean]})
row median "" "$b" "$d" "$g" "$l"
echo
echo "(B graphile-worker batched, D Deferral, G graphile-worker default$(lean && echo ", L Deferral without $DROP_INDEXES"): the order within the round)"
echo "Deferral / graphile-worker batched, medians: $(ratio "$d" "$b")×   (issue 20 target: ≥ 1.0×, stretch 1.5×)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); logs: $logs"
