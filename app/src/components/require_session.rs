use leptos::either::Either;
use leptos::prelude::*;
use leptos_router::hooks::use_location;

/// Renders its children only for a signed-in request; otherwise the server answers a redirect
/// to `/login?next=…`. In the browser the page was already allowed by the server (pages
/// rendered later in the browser rely on the server functions' own 401).
#[component]
pub fn RequireSession(children: ChildrenFn) -> impl IntoView {
    #[cfg(feature = "ssr")]
    let allowed = crate::server::session::signed_in();
    #[cfg(not(feature = "ssr"))]
    let allowed = true;

    if allowed {
        Either::Left(children())
    } else {
        let location = use_location();
        let here = format!("{}{}", location.pathname.get_untracked(), {
            let s = location.search.get_untracked();
            if s.is_empty() {
                s
            } else {
                format!("?{}", s.trim_start_matches('?'))
            }
        });
        let login = format!("/login?next={}", crate::model::encode_component(&here));
        #[cfg(feature = "ssr")]
        crate::server::session::redirect_to_login(&login);
        Either::Right(view! { <p class="signed-out">"Please " <a href=login>"log in"</a> " to use the console."</p> })
    }
}
