//! HTTP assembly: one router per resource, merged here.

mod assets;
pub mod error;
mod health;
pub mod limits;
mod metrics;
pub mod serve;
pub mod state;
pub mod token;

use std::sync::OnceLock;

use axum::Router;
use leptos::prelude::*;
use leptos_axum::{AxumRouteListing, LeptosRoutes, generate_route_list};

pub use assets::Assets;
pub use error::ApiError;
pub use state::AppState;
pub use token::check_bearer;

/// The console's routes, listed once per process.
///
/// Listing them renders the app with resource loading switched off, and Leptos keeps that switch
/// in one process-wide flag (`leptos_server`'s `SuppressResourceLoad`): a page that another server
/// in the same process renders meanwhile (tests run several side by side) would create its
/// resources while the flag is on, and they would wait forever. Listed once, before any router
/// exists, the listing never overlaps a render.
pub fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

pub fn router(state: AppState) -> Router {
    let routes = route_list();
    let options = state.leptos_options.clone();
    let console = crate::console::ConsoleService::new(state.clone()).into_context();
    let context = move || {
        provide_context(console.clone());
        crate::console::guard::provide_nonce();
    };
    // The console (pages, server functions, assets, its 404 page) behind its guard: cross-origin
    // posts refused, security headers on every answer.
    let console_routes = state
        .assets
        .router()
        .leptos_routes_with_context(&state, routes, context.clone(), move || app::shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(
            context,
            app::shell,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::console::guard::guard,
        ));
    let limits = state.config.limits.clone();
    let everything_but_the_webhook = Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(crate::api::router())
        .merge(console_routes);
    // The webhook keeps its own body limit, answered in its own JSON error.
    let router = limits::limit_bodies(everything_but_the_webhook).merge(crate::webhook::router());
    // br or gzip when the client accepts it: the wasm bundle shrinks to about a third, pages
    // and JSON lists by more. Small bodies (under 32 bytes) and images are left alone.
    let router = router.layer(tower_http::compression::CompressionLayer::new());
    limits::bound_requests(router, &limits).with_state(state)
}
