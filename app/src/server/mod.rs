//! Server functions: the console's only way to the server. Each one checks the session first
//! and answers 401 without one; those that change something also need the operator role (403
//! for a viewer). They live under `/console/fn/…`, apart from the REST API; the server refuses
//! cross-origin posts to them before they run.

mod actions;
mod auth;
mod event_types;
mod executions;
mod records;
#[cfg(feature = "ssr")]
pub mod session;

pub use actions::{ApplyBulk, PreviewBulk, RunAction, apply_bulk, preview_bulk, run_action};
pub use auth::{LogIn, LogOut, current_session, log_in, log_out};
pub use event_types::{SetPaused, get_alerts, get_event_types, get_pauses, set_paused};
pub use executions::{get_execution, get_facets, list_audit, list_executions};
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
    register_explicit::<auth::CurrentSession>();
    register_explicit::<executions::ListExecutions>();
    register_explicit::<executions::GetExecution>();
    register_explicit::<executions::GetFacets>();
    register_explicit::<executions::ListAudit>();
    register_explicit::<RunAction>();
    register_explicit::<PreviewBulk>();
    register_explicit::<ApplyBulk>();
    register_explicit::<event_types::GetEventTypes>();
    register_explicit::<SetPaused>();
    register_explicit::<event_types::GetPauses>();
    register_explicit::<event_types::GetAlerts>();
    register_explicit::<records::ListRecords>();
    register_explicit::<records::GetObject>();
    register_explicit::<records::GetOverview>();
}
