//! The overview on `/`, from the store's interval counts and backlog.

use app::error::ConsoleError;
use domain::overview::{Bucket, Overview, Window};

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::store_error;
use crate::store::{Store, now_ms};

/// Failing types listed.
const FAILING_TYPES: i64 = 5;
/// How long one computed overview is shown again. Computing it reads every finished execution
/// of the window from an index (about 90 ms for a day of 50,000 at 1M executions, twice that for
/// a week): once per this long, not on every list page.
const FRESH_FOR: Duration = Duration::from_secs(15);

/// The latest overview of each window, with when it was computed.
#[derive(Default)]
pub struct Cache(Mutex<Vec<(Window, Instant, Overview)>>);

impl Cache {
    pub async fn get(&self, store: &Store, window: Window) -> Result<Overview, ConsoleError> {
        let fresh = |entries: &Vec<(Window, Instant, Overview)>| {
            entries
                .iter()
                .find(|(w, at, _)| *w == window && at.elapsed() < FRESH_FOR)
                .map(|(_, _, o)| o.clone())
        };
        if let Some(o) = fresh(&self.0.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(o);
        }
        let computed = overview(store, window).await?;
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(w, ..)| *w != window);
        entries.push((window, Instant::now(), computed.clone()));
        Ok(computed)
    }
}

pub async fn overview(store: &Store, window: Window) -> Result<Overview, ConsoleError> {
    let now = now_ms();
    let bucket_ms = window.bucket_ms();
    let n = window.buckets();
    // Intervals aligned to the bucket size (hours in UTC), the last one holding now.
    let since = (now.div_euclid(bucket_ms) - (n as i64 - 1)) * bucket_ms;
    let mut buckets: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            start_ms: since + i as i64 * bucket_ms,
            ..Bucket::default()
        })
        .collect();
    for (state, index, count) in store
        .outcomes_per_interval(since, bucket_ms)
        .await
        .map_err(store_error)?
    {
        let Some(b) = usize::try_from(index).ok().and_then(|i| buckets.get_mut(i)) else {
            continue; // created in the future (a clock ahead): not in the window
        };
        match state.as_str() {
            "succeeded" => b.succeeded += count,
            "failed" => b.failed += count,
            _ => b.other += count,
        }
    }
    let (backlog, oldest_due_ms) = store.backlog().await.map_err(store_error)?;
    let failing_types = store.failing_types(since, FAILING_TYPES).await.map_err(store_error)?;
    Ok(Overview {
        window,
        now_ms: now,
        buckets,
        backlog,
        oldest_due_ms,
        failing_types,
    })
}
