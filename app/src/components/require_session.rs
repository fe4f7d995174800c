use leptos::either::EitherOf3;
use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::components::error_view::ErrorView;
use crate::error::ConsoleError;
use crate::server::current_session;
use crate::view::SessionInfo;

/// The signed-in session, as context for the pages under [`RequireSession`].
#[derive(Clone, Copy)]
pub struct CurrentSession(Resource<Result<SessionInfo, ConsoleError>>);

/// Whether the signed-in caller may act (an operator), for controls that should not even show
/// to a viewer. The server functions refuse a viewer's action whatever the page showed.
pub fn can_act() -> bool {
    use_context::<CurrentSession>()
        .and_then(|CurrentSession(session)| session.get_untracked())
        .and_then(Result::ok)
        .is_some_and(|s| s.can_act())
}

/// Renders its children only for a signed-in request; otherwise the server answers a redirect
/// to `/login?next=…`. The session is read once (a resource, so the browser hydrates with the
/// role the server rendered with) and given to the pages as context.
#[component]
pub fn RequireSession(children: ChildrenFn) -> impl IntoView {
    let session = Resource::new(|| (), |_| current_session());
    provide_context(CurrentSession(session));
    let body = move || {
        let children = children.clone();
        Suspend::new(async move {
            match session.await {
                Ok(_) => EitherOf3::A(children()),
                Err(ConsoleError::SignedOut) => EitherOf3::B(signed_out()),
                Err(error) => EitherOf3::C(view! { <ErrorView error/> }),
            }
        })
    };
    view! { <Suspense fallback=|| ()>{body}</Suspense> }
}

/// The way to the login page, coming back here afterwards.
fn signed_out() -> impl IntoView {
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
    view! { <p class="signed-out">"Please " <a href=login>"log in"</a> " to use the console."</p> }
}
