//! Checkpointer (SQLite): copies the write-ahead log into the database in the background. Left to
//! the writer, each copy (every ~4 MB of log) stalls the commit that triggers it.

use std::time::Duration;

use super::Service;
use crate::store::{Store, StoreError};

pub struct Checkpointer {
    store: Store,
}

impl Checkpointer {
    pub fn new(store: Store) -> Checkpointer {
        Checkpointer { store }
    }
}

impl Service for Checkpointer {
    type Report = ();

    fn name(&self) -> &'static str {
        "checkpointer"
    }

    fn every(&self) -> Duration {
        Duration::from_millis(500)
    }

    async fn run_once(&self) -> Result<(), StoreError> {
        self.store.bounded("checkpoint", self.store.checkpoint()).await
    }
}
