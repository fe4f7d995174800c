//! Group commit: concurrent deliveries are written together, one transaction per batch,
//! and each request hears back only after its batch committed.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::config::Config;
use crate::executor::ExecutorHandle;
use crate::store::{IngestOutcome, NewEvent, Store, StoreError};

const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<IngestOutcome, Arc<StoreError>>>;

#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<(NewEvent, Reply)>,
    pub config: Arc<Config>,
}

impl Ingest {
    /// Starts the writers: one on SQLite (a single writer anyway), several on PostgreSQL.
    pub fn start(store: Store, config: Arc<Config>, waker: ExecutorHandle) -> Ingest {
        let (tx, rx) = mpsc::channel::<(NewEvent, Reply)>(8 * MAX_BATCH);
        let rx = Arc::new(Mutex::new(rx));
        let writers = store.ingest_writers();
        for _ in 0..writers {
            tokio::spawn(write_batches(store.clone(), rx.clone(), waker.clone()));
        }
        Ingest { tx, config }
    }

    /// Stores one event; resolves after the commit.
    pub async fn submit(&self, event: NewEvent) -> Result<IngestOutcome, Arc<StoreError>> {
        let (reply, answer) = oneshot::channel();
        let closed = || Arc::new(StoreError::Db(sqlx::Error::PoolClosed));
        self.tx.send((event, reply)).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

async fn write_batches(store: Store, rx: Arc<Mutex<mpsc::Receiver<(NewEvent, Reply)>>>, waker: ExecutorHandle) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return; // every sender is gone
            }
        }
        let (events, replies): (Vec<NewEvent>, Vec<Reply>) = batch.drain(..).unzip();
        match store.bounded("ingest", store.ingest(&events)).await {
            Ok(outcomes) => {
                let created = outcomes.iter().any(|o| !o.duplicate);
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                if created {
                    waker.wake();
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
