//! The console's own tables (migration 0008): its signing secret, its sessions, and the audit
//! log of operator actions. The SQL is the same on both backends.

use domain::view::AuditEntry;

use super::rows::rfc3339;
use super::{Result, Store, on_db};

/// A session as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub role: String,
    pub credential: String,
    pub address: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub ended_at: Option<i64>,
}

/// An action to put on record.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub at: i64,
    pub role: &'static str,
    pub session_id: Option<String>,
    pub address: String,
    pub action: String,
    pub target: String,
    pub result_id: Option<String>,
    pub applied: i64,
    pub skipped: i64,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    at: i64,
    role: String,
    session_id: Option<String>,
    address: String,
    action: String,
    target: String,
    result_id: Option<String>,
    applied: i64,
    skipped: i64,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            seq: r.seq,
            at: rfc3339(r.at),
            role: r.role,
            session_id: r.session_id,
            address: r.address,
            action: r.action,
            target: r.target,
            result_id: r.result_id,
            applied: r.applied,
            skipped: r.skipped,
        }
    }
}

impl Store {
    /// The console's signing secret: `candidate` becomes it if none is stored yet (the first
    /// process to ask wins; the others read the winner's).
    pub async fn console_secret(&self, candidate: &str, now: i64) -> Result<String> {
        on_db!(&self.writer, pool => {
            sqlx::query("INSERT INTO console_secret (id, secret, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING")
                .bind(candidate)
                .bind(now)
                .execute(pool)
                .await?;
            Ok(sqlx::query_scalar("SELECT secret FROM console_secret WHERE id = 1")
                .fetch_one(pool)
                .await?)
        })
    }

    pub async fn create_console_session(&self, s: &SessionRow) -> Result<()> {
        on_db!(&self.writer, pool => {
            sqlx::query(
                "INSERT INTO console_sessions (id, role, credential, address, created_at, expires_at, ended_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&s.id)
            .bind(&s.role)
            .bind(&s.credential)
            .bind(&s.address)
            .bind(s.created_at)
            .bind(s.expires_at)
            .bind(s.ended_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn console_session(&self, id: &str) -> Result<Option<SessionRow>> {
        on_db!(&self.db, pool => Ok(sqlx::query_as(
            "SELECT id, role, credential, address, created_at, expires_at, ended_at FROM console_sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    pub async fn end_console_session(&self, id: &str, now: i64) -> Result<()> {
        on_db!(&self.writer, pool => {
            sqlx::query("UPDATE console_sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Ends every open session that was not opened with one of the current credentials (a
    /// password changed). Returns how many ended.
    pub async fn end_console_sessions_except(&self, operator: &str, viewer: Option<&str>, now: i64) -> Result<u64> {
        on_db!(&self.writer, pool => Ok(sqlx::query(
            "UPDATE console_sessions SET ended_at = $1 WHERE ended_at IS NULL
               AND NOT ((role = 'operator' AND credential = $2) OR (role = 'viewer' AND credential = $3))",
        )
        .bind(now)
        .bind(operator)
        .bind(viewer.unwrap_or(""))
        .execute(pool)
        .await?
        .rows_affected()))
    }

    pub async fn record_audit(&self, e: &NewAuditEntry) -> Result<()> {
        on_db!(&self.writer, pool => {
            sqlx::query(
                "INSERT INTO audit_log (at, role, session_id, address, action, target, result_id, applied, skipped)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(e.at)
            .bind(e.role)
            .bind(&e.session_id)
            .bind(&e.address)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.result_id)
            .bind(e.applied)
            .bind(e.skipped)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Up to `limit` entries older than `before` (a `seq`), newest first, and whether more follow.
    pub async fn audit_page(&self, before: Option<i64>, limit: i64) -> Result<(Vec<AuditEntry>, bool)> {
        let mut rows: Vec<AuditRow> = on_db!(&self.db, pool => sqlx::query_as(
            "SELECT seq, at, role, session_id, address, action, target, result_id, applied, skipped
             FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit + 1)
        .fetch_all(pool)
        .await?);
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok((rows.into_iter().map(AuditEntry::from).collect(), more))
    }

    /// Deletes audit entries recorded before `before` (the executions' retention) and sessions
    /// expired by `now`. Returns the audit entries deleted.
    pub async fn prune_console(&self, before: i64, now: i64) -> Result<u64> {
        on_db!(&self.writer, pool => {
            let audit = sqlx::query("DELETE FROM audit_log WHERE at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            Ok(audit)
        })
    }
}
