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
