//! An executions filter as SQL: one WHERE clause for the list and the counts, built so the
//! partial indexes can serve it.

pub use domain::model::parse_time_bound;
use domain::model::{Cursor, ExecutionFilter, Origin};

use super::{Result, Store, placeholders_from};

/// Binds filter arguments in order; a macro because the query type differs per backend.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                Arg::Int(i) => q.bind(*i),
                Arg::Text(t) => q.bind(t.clone()),
                Arg::Bool(b) => q.bind(*b),
            };
        }
        q
    }};
}
pub(super) use bind_args;

pub(super) enum Arg {
    Int(i64),
    Text(String),
    Bool(bool),
}

/// The WHERE clause for a filter, with its arguments in placeholder order.
pub(super) fn filter_sql(store: &Store, f: &ExecutionFilter, with_cursor: bool) -> Result<(String, Vec<Arg>)> {
    // Which part of the table the states live in, so the partial indexes of that part
    // (migration 0004) can serve: the states are bound parameters, which the planner cannot read.
    let any_state = f.statuses.is_empty();
    let finished = !any_state && f.statuses.iter().all(|s| s.is_final());
    let unfinished = !any_state && !f.statuses.iter().any(|s| s.is_final());
    // Unfinished executions (the backlog) are few next to the table: walking their own indexes
    // beats a whole-table index on livemode, API version or time that most rows share.
    let column = |name: &str| {
        if unfinished {
            store.driver.not_indexed(name)
        } else {
            name.to_string()
        }
    };
    let (livemode, api_version, created_at) = (column("livemode"), column("api_version"), column("created_at"));
    let mut clauses: Vec<String> = vec!["1 = 1".into()];
    if finished {
        clauses.push("finished_at IS NOT NULL".into());
    } else if unfinished {
        clauses.push("finished_at IS NULL".into());
    }
    let mut args: Vec<Arg> = Vec::new();
    let mut push = |clause: &dyn Fn(usize) -> String, arg: Arg| {
        args.push(arg);
        clauses.push(clause(args.len()));
    };
    if let Some(l) = f.livemode {
        push(&|i| format!("{livemode} = ${i}"), Arg::Bool(l));
    }
    if let Some(v) = &f.api_version {
        push(&|i| format!("{api_version} = ${i}"), Arg::Text(v.clone()));
    }
    if let Some(a) = &f.account {
        push(&|i| format!("account = ${i}"), Arg::Text(a.clone()));
    }
    if let Some(q) = &f.q {
        // One placeholder used three times keeps the arguments simple.
        push(
            &|i| format!("(id = ${i} OR event_id = ${i} OR object_id = ${i})"),
            Arg::Text(q.clone()),
        );
    }
    let bound = |s: &Option<String>| -> Result<Option<i64>> {
        s.as_deref()
            .map(|v| {
                parse_time_bound(v)
                    .ok_or_else(|| super::StoreError::Db(sqlx::Error::Protocol(format!("invalid time `{v}`"))))
            })
            .transpose()
    };
    if let Some(from) = bound(&f.from)? {
        push(&|i| format!("{created_at} >= ${i}"), Arg::Int(from));
    }
    if let Some(to) = bound(&f.to)? {
        push(&|i| format!("{created_at} < ${i}"), Arg::Int(to));
    }
    if with_cursor {
        match f.cursor {
            Some(Cursor::Before(seq)) => push(&|i| format!("seq < ${i}"), Arg::Int(seq)),
            Some(Cursor::After(seq)) => push(&|i| format!("seq > ${i}"), Arg::Int(seq)),
            None => {}
        }
    }
    let in_list = |col: &str, values: Vec<String>, clauses: &mut Vec<String>, args: &mut Vec<Arg>| {
        if values.is_empty() {
            return;
        }
        clauses.push(format!(
            "{col} IN ({})",
            placeholders_from(values.len(), args.len() + 1)
        ));
        args.extend(values.into_iter().map(Arg::Text));
    };
    in_list("event_type", f.types.clone(), &mut clauses, &mut args);
    in_list(
        "origin",
        f.origins.iter().map(|o| o.to_string()).collect(),
        &mut clauses,
        &mut args,
    );
    if !f.origins.is_empty() && !f.origins.contains(&Origin::Webhook) {
        // Written out so the planner sees the condition of the partial index `executions_origin`
        // (0010): bound values it cannot read.
        clauses.push("origin <> 'webhook'".into());
    }
    // Finished rows' indexes are keyed by `final_state` (0005), which equals `state` there.
    in_list(
        if finished { "final_state" } else { "state" },
        f.statuses.iter().map(|s| s.to_string()).collect(),
        &mut clauses,
        &mut args,
    );
    Ok((clauses.join(" AND "), args))
}
