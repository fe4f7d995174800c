//! The executor's transitions: claim, complete, renew. The SQL is each driver's; what an
//! attempt's end means for its row (`CompletionRow`) is decided here, once for both.

use super::rows::Claimed;
use super::{Result, Store, now_ms};

/// What a heartbeat renewed.
#[derive(Debug, Default)]
pub struct Renewed {
    /// The executions whose lease now runs a full lease from now.
    pub ids: Vec<String>,
    /// Those of them an operator asked to cancel.
    pub cancel: Vec<String>,
}

/// How an attempt ended, as the executor decided.
#[derive(Debug, Clone)]
pub enum Finish {
    Succeeded {
        result: String,
        source: Option<String>,
    },
    /// Try again at `at` (unix ms).
    Retry {
        at: i64,
        kind: &'static str,
        message: String,
    },
    /// No more tries: attempts exhausted or a permanent error.
    Failed {
        kind: &'static str,
        message: String,
    },
    /// Cancelled by an operator while running.
    Aborted,
    /// Shutdown came first: back to `scheduled`, the attempt not counted.
    Released,
    /// Not tried (no Stripe budget now): back to `scheduled` until `at` (unix ms), the attempt
    /// not counted and not recorded.
    Postponed {
        at: i64,
    },
}

impl Finish {
    /// Whether a text it stores (the handler's result and source, or the error message) holds
    /// a NUL character. Checked for every completion, so without allocating.
    fn has_nul(&self) -> bool {
        let nul = |s: &str| s.contains('\0');
        match self {
            Finish::Succeeded { result, source } => nul(result) || source.as_deref().is_some_and(nul),
            Finish::Retry { message, .. } | Finish::Failed { message, .. } => nul(message),
            Finish::Aborted | Finish::Released | Finish::Postponed { .. } => false,
        }
    }

    /// PostgreSQL refuses a text holding a NUL character, and the batch with it: a handler's
    /// message (quoting a response body, say) must not stop every completion behind it.
    fn without_nul(&self) -> Finish {
        let clean = |s: &String| s.replace('\0', "\u{FFFD}");
        match self {
            Finish::Succeeded { result, source } => Finish::Succeeded {
                result: clean(result),
                source: source.as_ref().map(clean),
            },
            Finish::Retry { at, kind, message } => Finish::Retry {
                at: *at,
                kind,
                message: clean(message),
            },
            Finish::Failed { kind, message } => Finish::Failed {
                kind,
                message: clean(message),
            },
            other => other.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub execution_id: String,
    pub attempt: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub duration_us: i64,
    pub finish: Finish,
}

impl Store {
    /// Claims up to `limit` due executions for `owner`, oldest first, one per Stripe object
    /// at a time and in the order of the events' `created`.
    pub async fn claim(&self, owner: &str, limit: i64, lease_ms: i64, skip_types: &[String]) -> Result<Vec<Claimed>> {
        let now = now_ms();
        let rows = self.driver.claim(owner, now, now + lease_ms, limit, skip_types).await?;
        Ok(rows.into_iter().map(Claimed::from).collect())
    }

    /// Whether executions are due that a claim could start now: paused types never count, and a
    /// type in `limited` (type, concurrency limit) only while fewer of it run than its limit.
    pub async fn claimable_exists(&self, limited: &[(String, i64)]) -> Result<bool> {
        self.driver.claimable_exists(now_ms(), limited).await
    }

    /// Claims for types with a concurrency limit: at most `limit - running` of `event_type`,
    /// and at most `max` (the workers free to run them).
    pub async fn claim_limited(
        &self,
        owner: &str,
        event_type: &str,
        type_limit: i64,
        lease_ms: i64,
        max: i64,
    ) -> Result<Vec<Claimed>> {
        let now = now_ms();
        let rows = self
            .driver
            .claim_type(owner, now, now + lease_ms, event_type, type_limit, max)
            .await?;
        Ok(rows.into_iter().map(Claimed::from).collect())
    }

    /// Records finished attempts: the attempt rows, then the executions, in one transaction. A
    /// completion whose lease was lost (rescued meanwhile, even if claimed again by this same
    /// owner: the attempt number differs then) changes nothing. Returns how many applied.
    pub async fn complete(&self, owner: &str, batch: &[Completion]) -> Result<u64> {
        let batch: std::borrow::Cow<[Completion]> = if batch.iter().any(|c| c.finish.has_nul()) {
            batch
                .iter()
                .map(|c| Completion {
                    finish: c.finish.without_nul(),
                    ..c.clone()
                })
                .collect()
        } else {
            batch.into()
        };
        let rows: Vec<CompletionRow> = batch.iter().map(CompletionRow::from).collect();
        self.driver.complete(owner, &rows).await
    }

    /// Renews `owner`'s leases on the executions it is `running` right now (and only those:
    /// one claimed but never started, e.g. the connection broke before its payload was read,
    /// expires and is rescued); answers the ids renewed, and those of them an operator asked
    /// to cancel.
    pub async fn heartbeat(&self, owner: &str, running: &[String], lease_ms: i64) -> Result<Renewed> {
        let mut renewed = Renewed::default();
        for (id, cancel) in self.driver.heartbeat(owner, running, now_ms() + lease_ms).await? {
            if cancel {
                renewed.cancel.push(id.clone());
            }
            renewed.ids.push(id);
        }
        Ok(renewed)
    }
}

/// A completion as the columns it writes.
pub(crate) struct CompletionRow<'a> {
    pub(super) id: &'a str,
    pub(super) state: &'static str,
    pub(super) next_run_at: Option<i64>,
    pub(super) finished_at: Option<i64>,
    pub(super) last_error: Option<&'a str>,
    pub(super) result: Option<&'a str>,
    pub(super) source: Option<&'a str>,
    /// 1 when the attempt is given back (released at shutdown), else 0.
    pub(super) uncount: i64,
    /// The attempt row's outcome; none for a released attempt.
    pub(super) outcome: Option<&'static str>,
    pub(super) kind: Option<&'a str>,
    pub(super) message: Option<&'a str>,
    pub(super) attempt: i64,
    pub(super) started_at: i64,
    pub(super) ended_at: i64,
    pub(super) duration_us: i64,
}

const ABORTED: &str = "cancelled by an operator while running";

impl<'a> From<&'a Completion> for CompletionRow<'a> {
    fn from(c: &'a Completion) -> Self {
        let mut row = CompletionRow {
            id: &c.execution_id,
            state: "scheduled",
            next_run_at: None,
            finished_at: None,
            last_error: None,
            result: None,
            source: None,
            uncount: 0,
            outcome: None,
            kind: None,
            message: None,
            attempt: c.attempt,
            started_at: c.started_at,
            ended_at: c.finished_at,
            duration_us: c.duration_us,
        };
        match &c.finish {
            Finish::Succeeded { result, source } => {
                row.state = "succeeded";
                row.finished_at = Some(c.finished_at);
                row.result = Some(result.as_str());
                row.source = source.as_deref();
                row.outcome = Some("succeeded");
            }
            Finish::Retry { at, kind, message } => {
                row.next_run_at = Some(*at);
                row.last_error = Some(message.as_str());
                (row.outcome, row.kind, row.message) = (Some("error"), Some(*kind), Some(message.as_str()));
            }
            Finish::Failed { kind, message } => {
                row.state = "failed";
                row.finished_at = Some(c.finished_at);
                row.last_error = Some(message.as_str());
                (row.outcome, row.kind, row.message) = (Some("error"), Some(*kind), Some(message.as_str()));
            }
            Finish::Aborted => {
                row.state = "cancelled";
                row.finished_at = Some(c.finished_at);
                row.last_error = Some(ABORTED);
                (row.outcome, row.kind, row.message) = (Some("aborted"), Some("aborted"), Some(ABORTED));
            }
            Finish::Released => {
                row.next_run_at = Some(c.finished_at);
                row.uncount = 1;
            }
            Finish::Postponed { at } => {
                row.next_run_at = Some(*at);
                row.uncount = 1;
            }
        }
        row
    }
}
