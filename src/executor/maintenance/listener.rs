//! Listener: executions committed by any other process wake this one (PostgreSQL's
//! LISTEN/NOTIFY, in the driver); polling remains the fallback while it reconnects. Where no
//! other process can share the database (SQLite) it ends at once.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::executor::ExecutorHandle;
use crate::store::Store;

/// Starts listening where other processes may commit work (SQLite: one process, nothing to hear).
pub(super) fn spawn(store: &Store, handle: ExecutorHandle, stop: CancellationToken) -> Option<JoinHandle<()>> {
    if !store.shared() {
        return None;
    }
    let store = store.clone();
    Some(tokio::spawn(async move {
        store.listen_due(Arc::new(move || handle.wake()), stop).await
    }))
}
