use leptos::either::Either;
use leptos::prelude::*;

use crate::error::ConsoleError;

/// An error from the server, with a way forward when the session has ended.
#[component]
pub fn ErrorView(error: ConsoleError) -> impl IntoView {
    let message = error.to_string();
    let login = matches!(error, ConsoleError::SignedOut);
    view! {
        <p class="error" role="alert">
            {message}
            {login.then(|| Either::<_, ()>::Left(view! { " " <a href="/login">"Log in"</a> }))}
        </p>
    }
}

/// The error of an action's latest submission, if it failed. Without JavaScript the error
/// comes back in the redirect URL and Leptos puts it into the action the same way.
#[component]
pub fn ActionError<S>(action: ServerAction<S>) -> impl IntoView
where
    S: leptos::server_fn::ServerFn<Error = ConsoleError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    move || {
        action
            .value()
            .get()
            .and_then(Result::err)
            .map(|error| view! { <ErrorView error/> })
    }
}
