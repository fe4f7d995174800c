//! Stripe event processing: one handler per event type, registered by name.
//! Types without a handler succeed with "skipped: no handler for <type>".

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::executor::{Job, JobError, JobOutput};
use crate::store::Claimed;

/// Handles one Stripe event type.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, execution: &Claimed) -> Result<String, JobError>;
}

/// The executor's job: finds the handler for the event's type and runs it.
#[derive(Default)]
pub struct Processor {
    handlers: HashMap<String, Arc<dyn Handler>>,
}

impl Processor {
    pub fn from_config(_config: &Config) -> Self {
        Processor::default()
    }

    /// Adds (or replaces) the handler for `event_type`.
    pub fn register(&mut self, event_type: &str, handler: Arc<dyn Handler>) -> &mut Self {
        self.handlers.insert(event_type.to_string(), handler);
        self
    }
}

#[async_trait::async_trait]
impl Job for Processor {
    async fn run(&self, execution: &Claimed) -> Result<JobOutput, JobError> {
        let ty = &execution.row.event_type;
        let result = match self.handlers.get(ty) {
            Some(h) => h.handle(execution).await?,
            None => format!("skipped: no handler for {ty}"),
        };
        Ok(JobOutput { result, source: Some("payload".into()) })
    }
}
