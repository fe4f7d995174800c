//! SQLite: storing a batch of events. Nobody else writes meanwhile (one writer), so what is not
//! there yet is what gets inserted: reading the known ids (usually none) spares a returned row
//! per event.

use sqlx::SqlitePool;

use super::super::Result;
use super::super::ingest::{
    CHUNK, INSERT_EVENTS, Ingested, NewEvent, bind_events, insert_executions, stored_executions,
};
use super::super::values_list;
use super::{BEGIN_WRITE, sql};

pub(super) async fn ingest(
    pool: &SqlitePool,
    events: &[NewEvent],
    firsts: &[usize],
    new_ids: &[String],
    now: i64,
) -> Result<Ingested> {
    let mut out = Ingested::default();
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    for (chunk, ids) in firsts.chunks(CHUNK).zip(new_ids.chunks(CHUNK)) {
        let known: Vec<(String, String)> =
            stored_executions!(tx, chunk.iter().map(|&i| events[i].id.as_str()).collect(), sql);
        out.existing.extend(known);
        let fresh: Vec<(&NewEvent, &String)> = chunk
            .iter()
            .zip(ids)
            .map(|(&i, id)| (&events[i], id))
            .filter(|(e, _)| !out.existing.contains_key(&e.id))
            .collect();
        if !fresh.is_empty() {
            let statement = sql(format!("{INSERT_EVENTS} {}", values_list(fresh.len(), 11, 1)));
            bind_events!(sqlx::query(&statement), fresh.iter().copied(), now)
                .execute(&mut *tx)
                .await?;
        }
        insert_executions!(tx, &fresh, now, sql);
        out.created
            .extend(fresh.iter().map(|(e, id)| (e.id.clone(), (*id).clone())));
    }
    tx.commit().await?;
    Ok(out)
}
