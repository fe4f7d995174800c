// graphile-worker's side of `make bench-peer`: N no-op jobs, enqueued first, then one worker
// pool drains them; the time from starting the pool until the last job is gone.
//
//   node bench.mjs <database-url> batched|default
//
// The database must exist and be empty (run.sh creates a fresh one for every run). Env:
//   JOBS         jobs to run (30000)
//   CONCURRENCY  the pool's concurrentJobs (512, Deferral's default WORKERS)
//   POOL_SIZE    the pool's PostgreSQL connections (20, as many as Deferral opens: 12 writers, 8 readers)
//
// Modes, as graphile-worker's own perfTest/graphile.config.js sets them:
//   batched  localQueue of 500 (jobs fetched and locked 500 at a time), refetch delay 10 ms,
//            completeJobBatchDelay and failJobBatchDelay 0 (completions batched per tick)
//   default  no local queue, one completion statement per job (graphile-worker's defaults)
//
// Prints a human-readable table, then one line `RESULT <mode> <jobs/s>` for run.sh.

// graphile-worker reads this when its modules load: no log line per successful job.
process.env.NO_LOG_SUCCESS = "1";
const { run, runMigrations, makeWorkerUtils, Logger } = await import("graphile-worker");

const [url, mode] = process.argv.slice(2);
if (!url || !["batched", "default"].includes(mode)) {
  console.error("usage: node bench.mjs <database-url> batched|default");
  process.exit(2);
}
const int = (name, fallback) => {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : parseInt(v, 10);
};
const jobs = int("JOBS", 30000);
const concurrency = int("CONCURRENCY", 512);
const poolSize = int("POOL_SIZE", 20);

// Warnings and errors only.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`graphile-worker ${level}: ${message}`);
});

const batching =
  mode === "batched"
    ? { localQueue: { size: 500, refetchDelay: { durationMs: 10 } }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
    : { localQueue: { size: -1 }, completeJobBatchDelay: -1, failJobBatchDelay: -1 };
const preset = {
  worker: { connectionString: url, concurrentJobs: concurrency, maxPoolSize: poolSize, logger, ...batching },
};

// 1. Schema, then the jobs, 1,000 per statement (as Deferral's bench enqueues).
await runMigrations({ preset, logger });
const utils = await makeWorkerUtils({ preset, logger });
const enqueueStart = performance.now();
for (let i = 0; i < jobs; i += 1000) {
  const batch = [];
  for (let k = i; k < Math.min(i + 1000, jobs); k++) batch.push({ identifier: "noop", payload: { id: k } });
  await utils.addJobs(batch);
}
const enqueueSeconds = (performance.now() - enqueueStart) / 1000;

// 2. The pool starts on a migrated schema with every job waiting; the clock runs from here.
let ran = 0;
let firstStart = null;
const taskList = {
  noop: async () => {
    if (firstStart === null) firstStart = performance.now();
    ran++;
  },
};
const started = performance.now();
const runner = await run({ preset, taskList, parsedCronItems: [], noHandleSignals: true });
// Every job has run once it has started N times and the table is empty (graphile-worker deletes
// a job when it completes; batched completions land a tick after the run).
const remaining = async () =>
  parseInt((await utils.withPgClient((c) => c.query("SELECT count(*) FROM graphile_worker._private_jobs"))).rows[0].count, 10);
for (;;) {
  if (ran >= jobs && (await remaining()) === 0) break;
  await new Promise((r) => setTimeout(r, 5));
}
const elapsed = (performance.now() - started) / 1000;
await runner.stop();
await utils.release();
if (ran !== jobs) {
  console.error(`graphile-worker ran ${ran} jobs for ${jobs} enqueued`);
  process.exit(1);
}

const rate = jobs / elapsed;
const pkg = JSON.parse(
  await (await import("node:fs/promises")).readFile(new URL("./node_modules/graphile-worker/package.json", import.meta.url)),
);
console.log(`graphile-worker ${pkg.version}, ${mode} mode, Node ${process.version}`);
console.log("| measure | value |");
console.log("|---|---|");
console.log(`| enqueue ${jobs} jobs (addJobs, batches of 1,000) | ${(jobs / enqueueSeconds).toFixed(0)}/s |`);
console.log(`| pool start to first job | ${(firstStart - started).toFixed(1)} ms |`);
console.log(`| run ${jobs} no-op jobs, concurrency ${concurrency}, ${poolSize} connections, end to end | ${rate.toFixed(0)}/s |`);
console.log(`RESULT ${mode} ${rate.toFixed(0)}`);
