use leptos::prelude::*;

use crate::error::ConsoleError;

/// Checks the password and sets the session cookie, then goes to `next` (a local path).
#[server(prefix = "/console/fn", endpoint = "login")]
pub async fn log_in(password: String, next: Option<String>) -> Result<(), ConsoleError> {
    use super::session;
    let console = session::console()?;
    let session = console.login(&password).map_err(session::failed)?;
    session::start_session(&session.token, session.max_age_secs);
    leptos_axum::redirect(&crate::query::safe_next(next.as_deref().unwrap_or("/")));
    Ok(())
}

/// Ends the session (the token stops working) and clears the cookie.
#[server(prefix = "/console/fn", endpoint = "logout")]
pub async fn log_out() -> Result<(), ConsoleError> {
    use super::session;
    let console = session::console()?;
    if let Some(token) = session::current_token() {
        console.logout(&token);
    }
    session::end_session();
    leptos_axum::redirect("/login");
    Ok(())
}
