//! The list query for several statuses or types at once. SQLite cannot walk an index in `seq`
//! order for `state IN (a, b)`: it sorts every match, which is slow when matches are many.
//! One query per (status, type) pair walks its own index range in order and stops after a
//! page; merging those pages here gives the same rows as the single query would.

use domain::model::{Cursor, ExecutionFilter, State};

use crate::store::{ExecutionRow, Result, Store};

/// Beyond this many pairs the single query is used (long multi-selects are rare).
const MAX_BRANCHES: usize = 24;

/// One page of `filter`, newest first, and whether more lie in the cursor's direction.
pub async fn page(store: &Store, filter: &ExecutionFilter) -> Result<(Vec<ExecutionRow>, bool)> {
    let statuses: Vec<Option<State>> = options(&filter.statuses);
    let types: Vec<Option<String>> = options(&filter.types);
    let branches = statuses.len() * types.len();
    if branches <= 1 || branches > MAX_BRANCHES {
        return store.list(filter).await;
    }
    let mut rows = Vec::new();
    for status in &statuses {
        for event_type in &types {
            let branch = ExecutionFilter {
                statuses: status.iter().copied().collect(),
                types: event_type.iter().cloned().collect(),
                ..filter.clone()
            };
            rows.extend(store.list(&branch).await?.0);
        }
    }
    // Each branch holds the page's nearest rows to the cursor; the merged page is the nearest overall.
    let newer = matches!(filter.cursor, Some(Cursor::After(_)));
    if newer {
        rows.sort_by_key(|r| r.seq);
    } else {
        rows.sort_by_key(|r| std::cmp::Reverse(r.seq));
    }
    let limit = filter.page_size() as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    if newer {
        rows.reverse();
    }
    Ok((rows, more))
}

fn options<T: Clone>(values: &[T]) -> Vec<Option<T>> {
    if values.is_empty() {
        vec![None]
    } else {
        values.iter().cloned().map(Some).collect()
    }
}
