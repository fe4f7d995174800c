use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::components::error_view::ActionError;
use crate::server::LogIn;

/// The password form. Posts to the `login` server function, which sets the session cookie
/// and redirects to `next`.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".into());
    let login = ServerAction::<LogIn>::new();
    view! {
        <section class="login">
            <h1>"Log in"</h1>
            <ActionForm action=login attr:class="login-form">
                <input type="hidden" name="next" value=next/>
                <label>
                    "Password "
                    <input type="password" name="password" autocomplete="current-password" required=true autofocus=true/>
                </label>
                <button type="submit">"Log in"</button>
            </ActionForm>
            <ActionError action=login/>
        </section>
    }
}
