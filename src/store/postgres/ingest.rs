//! PostgreSQL: storing a batch of events while other processes may insert the same ids (Stripe
//! retries a delivery to whichever process answers): the conflict on the event id decides.

use std::collections::HashSet;

use sqlx::PgPool;

use super::super::Result;
use super::super::ingest::{
    CHUNK, INSERT_EVENTS, Ingested, NewEvent, bind_events, insert_executions, stored_executions,
};
use super::super::values_list;

/// As written: PostgreSQL numbers parameters itself.
fn sql(sql: String) -> String {
    sql
}

pub(super) async fn ingest(
    pool: &PgPool,
    events: &[NewEvent],
    firsts: &[usize],
    new_ids: &[String],
    now: i64,
) -> Result<Ingested> {
    let mut out = Ingested::default();
    let mut tx = pool.begin().await?;
    for (chunk, ids) in firsts.chunks(CHUNK).zip(new_ids.chunks(CHUNK)) {
        let statement = format!(
            "{INSERT_EVENTS} {} ON CONFLICT (id) DO NOTHING RETURNING id",
            values_list(chunk.len(), 11, 1)
        );
        let inserted: HashSet<String> = bind_events!(
            sqlx::query_scalar::<_, String>(&statement),
            chunk.iter().map(|&i| &events[i]).zip(ids),
            now
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let new: Vec<(&NewEvent, &String)> = chunk
            .iter()
            .zip(ids)
            .map(|(&i, id)| (&events[i], id))
            .filter(|(e, _)| inserted.contains(&e.id))
            .collect();
        insert_executions!(tx, &new, now, sql);
        out.created
            .extend(new.iter().map(|(e, id)| (e.id.clone(), (*id).clone())));
        let known: Vec<&str> = chunk
            .iter()
            .map(|&i| events[i].id.as_str())
            .filter(|id| !inserted.contains(*id) && !out.existing.contains_key(*id))
            .collect();
        let known: Vec<(String, String)> = stored_executions!(tx, known, sql);
        out.existing.extend(known);
    }
    tx.commit().await?;
    Ok(out)
}
