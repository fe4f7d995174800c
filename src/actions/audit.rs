//! The audit log: every operator action, from the console or the REST API, on record with who
//! did it (role and session), when, what, how many and from which address. Shown at `/audit`
//! and `GET /api/v1/audit`; pruned with the executions (`DEFERRAL_RETENTION`).

use std::net::IpAddr;

use app::api::Actor;
use domain::model::{Cursor, DEFAULT_PAGE_SIZE};
use domain::view::AuditPage;

use crate::store::console::NewAuditEntry;
use crate::store::{Store, StoreError, now_ms};

/// Who acts.
#[derive(Debug, Clone)]
pub struct By {
    role: &'static str,
    session_id: Option<String>,
    address: IpAddr,
    /// A console viewer may browse but not act.
    may_act: bool,
}

impl By {
    /// A console session, operator or viewer: the actions service refuses a viewer's action
    /// (whatever a page offered or a request says).
    pub fn console(actor: &Actor) -> By {
        By {
            role: actor.session.role.as_str(),
            session_id: Some(actor.session.session_id.clone()),
            address: actor.address,
            may_act: actor.session.role.can_act(),
        }
    }

    /// A caller of the REST API (holder of the bearer token).
    pub fn api(address: IpAddr) -> By {
        By {
            role: "api",
            session_id: None,
            address,
            may_act: true,
        }
    }

    /// A command-line tool on this machine (`deferral demo`), named by `role`.
    pub fn tool(role: &'static str) -> By {
        By {
            role,
            session_id: None,
            address: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            may_act: true,
        }
    }

    /// `operator`, `api` or a tool's name: who a pause is shown as set by.
    pub fn role(&self) -> &'static str {
        self.role
    }

    /// Everyone but a console viewer may act.
    pub fn may_act(&self) -> bool {
        self.may_act
    }
}

/// What was done, to put on record.
pub struct Done<'a> {
    pub action: String,
    pub target: &'a str,
    pub result_id: Option<&'a str>,
    pub applied: i64,
    pub skipped: i64,
}

/// Records an action that was carried out. The action stands either way: a failure to record
/// it is logged as an error (with everything the entry would have held).
pub async fn record(store: &Store, by: &By, done: Done<'_>) {
    let entry = NewAuditEntry {
        at: now_ms(),
        role: by.role,
        session_id: by.session_id.clone(),
        address: by.address.to_string(),
        action: done.action,
        target: done.target.to_string(),
        result_id: done.result_id.map(String::from),
        applied: done.applied,
        skipped: done.skipped,
    };
    if let Err(e) = store.record_audit(&entry).await {
        tracing::error!(error = %e, ?entry, "could not record an operator action in the audit log");
    }
}

/// Only older pages: a cursor is `b<seq>`.
pub fn before(cursor: Option<Cursor>) -> Result<Option<i64>, String> {
    match cursor {
        None => Ok(None),
        Some(Cursor::Before(seq)) => Ok(Some(seq)),
        Some(Cursor::After(_)) => Err("the audit log pages to older entries only (`cursor=b…`)".into()),
    }
}

/// A page of the log, newest first, older than `before` (see [`before`]).
pub async fn page(store: &Store, before: Option<i64>, limit: Option<u32>) -> Result<AuditPage, StoreError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE) as i64;
    let (data, more) = store.audit_page(before, limit).await?;
    let next_cursor = more
        .then(|| data.last().map(|e| Cursor::Before(e.seq).encode()))
        .flatten();
    Ok(AuditPage { data, next_cursor })
}
