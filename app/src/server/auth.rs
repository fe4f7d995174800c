use leptos::prelude::*;

use crate::error::ConsoleError;
use crate::view::SessionInfo;

/// Checks the password and sets the session cookie, then goes to `next` (a local path).
#[server(prefix = "/console/fn", endpoint = "login")]
pub async fn log_in(password: String, next: Option<String>) -> Result<(), ConsoleError> {
    use super::session;
    let console = session::console()?;
    let client = session::client_address(&console);
    let session = console.login(&password, client).await.map_err(session::failed)?;
    session::start_session(&console, &session.token, session.max_age_secs);
    session::redirect(&crate::query::safe_next(next.as_deref().unwrap_or("/")));
    Ok(())
}

/// Ends the session (its token stops working in every process) and clears the cookie.
#[server(prefix = "/console/fn", endpoint = "logout")]
pub async fn log_out() -> Result<(), ConsoleError> {
    use super::session;
    let console = session::console()?;
    if let Some(token) = session::current_token() {
        console.logout(&token).await;
    }
    session::end_session(&console);
    session::redirect("/login");
    Ok(())
}

/// The caller's session (its role decides which controls the pages show), or `SignedOut`.
#[server(prefix = "/console/fn", endpoint = "session")]
pub async fn current_session() -> Result<SessionInfo, ConsoleError> {
    use super::session;
    let (_, signed_in) = session::signed_in().await?;
    Ok(SessionInfo { role: signed_in.role })
}
