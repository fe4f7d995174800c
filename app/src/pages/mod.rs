pub mod executions;
pub mod not_found;
