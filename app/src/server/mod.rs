//! Server functions: the console's only way to the server. Each one checks the session first
//! and answers 401 without one. They live under `/console/fn/…`, apart from the REST API.

mod actions;
mod auth;
mod executions;
#[cfg(feature = "ssr")]
pub mod session;

pub use actions::{ApplyBulk, PreviewBulk, RunAction, apply_bulk, preview_bulk, run_action};
pub use auth::{LogIn, LogOut, log_in, log_out};
pub use executions::{get_execution, get_facets, list_executions};

/// Where the server functions are mounted.
pub const PREFIX: &str = "/console/fn";
