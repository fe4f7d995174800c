//! Operator actions. Each is posted by an `ActionForm`, so it works without JavaScript too;
//! on success it redirects to a page that shows the outcome.

use leptos::prelude::*;

use crate::error::ConsoleError;
use crate::model::Execution;
use crate::view::{BulkOutcome, BulkPreview};

#[cfg(feature = "ssr")]
fn parse_action(action: &str) -> Result<crate::model::Action, ConsoleError> {
    action
        .parse()
        .map_err(|e: String| super::session::failed(ConsoleError::Invalid(e)))
}

/// Parses a filter sent as a URL query string (the bulk form carries the page's filter so).
#[cfg(feature = "ssr")]
fn parse_filter(query: &str) -> Result<crate::model::ExecutionFilter, ConsoleError> {
    let pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    crate::model::ExecutionFilter::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| super::session::failed(ConsoleError::Invalid(e)))
}

/// Percent-decoding (and `+` as space) for a query component; malformed escapes stay as they are.
#[cfg(feature = "ssr")]
fn decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Retry now, re-run or cancel one execution.
#[server(prefix = "/console/fn", endpoint = "act")]
pub async fn run_action(id: String, action: String) -> Result<Execution, ConsoleError> {
    use super::session;
    let (console, actor) = session::operator().await?;
    let action = parse_action(&action)?;
    let execution = console.act(&actor, &id, action).await.map_err(session::failed)?;
    // A re-run is a new execution: show it, with a link back to the original.
    let target = match action {
        crate::model::Action::Rerun => format!(
            "/executions/{}?done=rerun&from_id={}",
            crate::model::encode_component(&execution.id),
            crate::model::encode_component(&id)
        ),
        other => format!(
            "/executions/{}?done={}",
            crate::model::encode_component(&id),
            other.as_str()
        ),
    };
    session::redirect(&target);
    Ok(execution)
}

/// How many executions the bulk action would touch, for the confirmation.
#[server(prefix = "/console/fn", endpoint = "bulk_preview")]
pub async fn preview_bulk(action: String, query: String) -> Result<BulkPreview, ConsoleError> {
    use super::session;
    let console = session::authorized().await?;
    let action = parse_action(&action)?;
    let filter = parse_filter(&query)?;
    console.bulk_preview(&filter, action).await.map_err(session::failed)
}

/// Applies a confirmed bulk action, then returns to the list with the outcome.
#[server(prefix = "/console/fn", endpoint = "bulk_apply")]
pub async fn apply_bulk(action: String, query: String) -> Result<BulkOutcome, ConsoleError> {
    use super::session;
    let (console, actor) = session::operator().await?;
    let action = parse_action(&action)?;
    let mut filter = parse_filter(&query)?;
    if filter.cursor.is_none() {
        return Err(session::failed(ConsoleError::Invalid(
            "a bulk action needs the bound from its confirmation; open the confirmation again".into(),
        )));
    }
    let outcome = console
        .bulk_apply(&actor, &filter, action)
        .await
        .map_err(session::failed)?;
    filter.cursor = None;
    let mut target = crate::query::list_href(&filter, None);
    target.push(if target.contains('?') { '&' } else { '?' });
    target.push_str(&format!(
        "done=bulk-{}&n={}&skipped={}",
        action.as_str(),
        outcome.applied,
        outcome.skipped
    ));
    session::redirect(&target);
    Ok(outcome)
}
