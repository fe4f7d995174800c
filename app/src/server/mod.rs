//! Server functions: the console's only way to the server. Each one checks the session first
//! and answers 401 without one. They live under `/console/fn/…`, apart from the REST API.

mod actions;
mod auth;
mod executions;
mod records;
#[cfg(feature = "ssr")]
pub mod session;

pub use actions::{ApplyBulk, PreviewBulk, RunAction, apply_bulk, preview_bulk, run_action};
pub use auth::{LogIn, LogOut, log_in, log_out};
pub use executions::{get_execution, get_facets, list_executions};
pub use records::{get_object, get_overview, list_records};

/// Where the server functions are mounted.
pub const PREFIX: &str = "/console/fn";

/// Registers every server function by hand. They normally register themselves at link time
/// (`inventory`), which some builds drop (a release test binary was seen answering 404);
/// the server calls this before its router is built so the routes exist in every build.
#[cfg(feature = "ssr")]
pub fn register() {
    use leptos::server_fn::axum::register_explicit;
    register_explicit::<LogIn>();
    register_explicit::<LogOut>();
    register_explicit::<executions::ListExecutions>();
    register_explicit::<executions::GetExecution>();
    register_explicit::<executions::GetFacets>();
    register_explicit::<RunAction>();
    register_explicit::<PreviewBulk>();
    register_explicit::<ApplyBulk>();
    register_explicit::<records::ListRecords>();
    register_explicit::<records::GetObject>();
    register_explicit::<records::GetOverview>();
}
