//! Shared by the benchmarks: latency summaries and the database under test.
#![allow(dead_code)]

use std::time::Duration;

/// `DATABASE_URL` if set, else a fresh SQLite file in a temporary folder.
pub fn database_url() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    (url, dir)
}

/// Empties a PostgreSQL database given for benchmarking, so runs start alike.
pub async fn reset(url: &str) {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query("DROP SCHEMA public CASCADE").execute(&pool).await.unwrap();
        sqlx::query("CREATE SCHEMA public").execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// An experiment, not a configuration: drops the PostgreSQL indexes named in
/// `BENCH_DROP_INDEXES` (comma-separated) once the schema is in place, so a run measures what
/// those indexes cost the benchmark (issue 20's upper bound: the executor without the console's
/// indexes). Prints what it dropped; does nothing without the variable or on SQLite.
pub async fn drop_indexes(url: &str) {
    let Ok(names) = std::env::var("BENCH_DROP_INDEXES") else {
        return;
    };
    if !url.starts_with("postgres") {
        return;
    }
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        // A name, never SQL: quoted as an identifier.
        let sql = format!("DROP INDEX \"{}\"", name.replace('"', "\"\""));
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    println!("Dropped for this run (BENCH_DROP_INDEXES): {names}\n");
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
