use leptos::prelude::*;

/// Unknown paths: a 404 status on the server-rendered response and a way back.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <section class="not-found">
            <h1>"Page not found"</h1>
            <p>"Nothing lives at this address. " <a href="/">"Back to the executions"</a></p>
        </section>
    }
}
