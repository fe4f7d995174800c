//! Another connection holding the database's write lock: the repeatable stand-in for a writer
//! starved of CPU, or a long migration. SQLite: a connection in `BEGIN IMMEDIATE`; PostgreSQL:
//! `LOCK TABLE executions IN EXCLUSIVE MODE` (plain reads pass, every write and row lock waits).

use sqlx::Connection;

pub enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    /// Takes the lock on the database at `url` and holds it until `release` (or drop).
    pub async fn take(url: &str) -> WriteLock {
        if url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut c).await.unwrap();
            WriteLock::Sqlite(c)
        } else {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE executions IN EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            WriteLock::Postgres(c)
        }
    }

    pub async fn release(self) {
        match self {
            WriteLock::Sqlite(mut c) => sqlx::raw_sql("ROLLBACK").execute(&mut c).await.map(|_| ()),
            WriteLock::Postgres(mut c) => sqlx::raw_sql("ROLLBACK").execute(&mut c).await.map(|_| ()),
        }
        .unwrap();
    }
}
