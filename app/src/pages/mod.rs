pub mod alerts;
pub mod audit;
pub mod bulk;
pub mod detail;
pub mod event_types;
pub mod executions;
pub mod login;
pub mod not_found;
