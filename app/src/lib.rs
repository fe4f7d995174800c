//! Deferral's operator console: a Leptos app rendered on the server and hydrated in the browser.
//!
//! The server (`src/` in the workspace root) provides the data through [`api::ConsoleApi`]
//! in Leptos context; nothing here knows SQL.

#[cfg(feature = "ssr")]
pub mod api;
mod components;
pub mod error;
// The domain types, under the names the console has always used (`crate::model::State`, …).
pub use domain::{alerts, event_types, model, overview, records, view};
mod pages;
pub mod query;
pub mod server;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{Outlet, ParentRoute, Route, Router, Routes},
    path,
};

use components::{header::Header, require_session::RequireSession};
use pages::{
    alerts::AlertsPage, audit::AuditPage, bulk::BulkPage, detail::DetailPage, event_types::EventTypesPage,
    executions::ExecutionsPage, login::LoginPage, not_found::NotFound, object::ObjectPage, records::RecordsPage,
};

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // Versioned like the scripts (`site_pkg_dir`), so browsers keep it until it changes.
    let stylesheet = format!("/{}/deferral.css", options.site_pkg_dir);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="stylesheet" id="leptos" href=stylesheet/>
                // No icon: without this line browsers ask for /favicon.ico and log its 404.
                <link rel="icon" href="data:,"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser, after hydration: tests wait for this marker.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    // SsrMode::Async: the server sends complete pages (data included) so they read the same without
    // JavaScript, and a missing session can still answer with a redirect.
    view! {
        <Title text="Deferral"/>
        <Router>
            <Header/>
            <main>
                <Routes fallback=NotFound>
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                    <ParentRoute path=path!("") view=SignedIn ssr=SsrMode::Async>
                        <Route path=path!("") view=ExecutionsPage ssr=SsrMode::Async/>
                        <Route path=path!("executions/:id") view=DetailPage ssr=SsrMode::Async/>
                        <Route path=path!("bulk") view=BulkPage ssr=SsrMode::Async/>
                        <Route path=path!("audit") view=AuditPage ssr=SsrMode::Async/>
                        <Route path=path!("event-types") view=EventTypesPage ssr=SsrMode::Async/>
                        <Route path=path!("alerts") view=AlertsPage ssr=SsrMode::Async/>
                        <Route path=path!("records/:kind") view=RecordsPage ssr=SsrMode::Async/>
                        <Route path=path!("objects/:id") view=ObjectPage ssr=SsrMode::Async/>
                    </ParentRoute>
                </Routes>
            </main>
        </Router>
    }
}

/// Every page but the login page: only for a signed-in operator.
#[component]
fn SignedIn() -> impl IntoView {
    view! {
        <RequireSession>
            <Outlet/>
        </RequireSession>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
