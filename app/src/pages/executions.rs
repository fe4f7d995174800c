use leptos::prelude::*;

/// The executions list. Auto-refresh is a client-side toggle: it only responds once the
/// wasm bundle has hydrated the page.
#[component]
pub fn ExecutionsPage() -> impl IntoView {
    let (auto_refresh, set_auto_refresh) = signal(false);
    view! {
        <section class="executions">
            <div class="toolbar">
                <h1>"Executions"</h1>
                <button
                    class="auto-refresh"
                    aria-pressed=move || auto_refresh.get().to_string()
                    on:click=move |_| set_auto_refresh.update(|on| *on = !*on)
                >
                    {move || if auto_refresh.get() { "Auto-refresh: on" } else { "Auto-refresh: off" }}
                </button>
            </div>
            <p class="empty">"No executions yet. Point Stripe at /webhooks/stripe to see them here."</p>
        </section>
    }
}
