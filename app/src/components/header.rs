use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_location;

use crate::server::LogOut;

/// The top bar: product name, navigation and, when signed in, a logout button (a form post).
#[component]
pub fn Header() -> impl IntoView {
    let logout = ServerAction::<LogOut>::new();
    let location = use_location();
    let on_login_page = move || location.pathname.get() == "/login";
    view! {
        <header class="top">
            <A href="/" attr:class="brand">"Deferral"</A>
            <nav>
                <A href="/">"Executions"</A>
                <A href="/records/customers">"Records"</A>
                <A href="/audit">"Audit log"</A>
                <A href="/event-types">"Event types"</A>
                <A href="/alerts">"Alerts"</A>
            </nav>
            <Show when=move || !on_login_page()>
                <ActionForm action=logout attr:class="logout">
                    <button type="submit">"Log out"</button>
                </ActionForm>
            </Show>
        </header>
    }
}
