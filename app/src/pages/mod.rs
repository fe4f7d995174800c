pub mod bulk;
pub mod detail;
pub mod executions;
pub mod login;
pub mod not_found;
pub mod object;
pub mod records;
