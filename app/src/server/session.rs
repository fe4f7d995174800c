//! The session cookie and the guard every server function and page goes through.

use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

use crate::api::Console;
use crate::error::ConsoleError;

pub const COOKIE: &str = "deferral_session";

/// The implementation the server provided.
pub fn console() -> Result<Console, ConsoleError> {
    use_context::<Console>()
        .ok_or_else(|| ConsoleError::Internal("the console is not configured on this server".into()))
}

fn session_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then(|| value.to_string())
        })
}

/// The current request's session token, if it carries one.
pub fn current_token() -> Option<String> {
    use_context::<Parts>().as_ref().and_then(session_token)
}

/// Whether the current request has a valid session.
pub fn signed_in() -> bool {
    match (console(), current_token()) {
        (Ok(console), Some(token)) => console.session_valid(&token),
        _ => false,
    }
}

/// A plain HTML form post or page load (as opposed to the wasm client or a script).
fn from_browser_navigation() -> bool {
    use_context::<Parts>()
        .and_then(|p| {
            p.headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.contains("text/html"))
        })
        .unwrap_or(false)
}

/// The console for a signed-in caller; otherwise `SignedOut` (401 for non-browser callers;
/// browsers posting a form are sent back, and from there to the login page).
pub fn authorized() -> Result<Console, ConsoleError> {
    let console = console()?;
    match current_token() {
        Some(token) if console.session_valid(&token) => Ok(console),
        _ => Err(failed(ConsoleError::SignedOut)),
    }
}

/// Gives an error its HTTP status for callers that read statuses (the wasm client, scripts).
/// Browser navigations keep Leptos's redirect, which carries the error back to the form's page.
pub fn failed(e: ConsoleError) -> ConsoleError {
    let status = match &e {
        ConsoleError::SignedOut | ConsoleError::WrongPassword => StatusCode::UNAUTHORIZED,
        ConsoleError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
        ConsoleError::Refused(_) => StatusCode::CONFLICT,
        ConsoleError::Invalid(_) => StatusCode::BAD_REQUEST,
        ConsoleError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if !from_browser_navigation()
        && let Some(res) = use_context::<ResponseOptions>()
    {
        res.set_status(status);
    }
    e
}

/// Served over HTTPS (directly or behind a proxy that says so): the cookie gets `Secure`.
fn over_https() -> bool {
    use_context::<Parts>().is_some_and(|p| {
        p.uri.scheme_str() == Some("https")
            || p.headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("https"))
    })
}

fn set_cookie(value: &str, max_age_secs: u64) {
    let secure = if over_https() { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}");
    if let (Some(res), Ok(value)) = (use_context::<ResponseOptions>(), HeaderValue::from_str(&cookie)) {
        res.append_header(header::SET_COOKIE, value);
    }
}

pub fn start_session(token: &str, max_age_secs: u64) {
    set_cookie(token, max_age_secs);
}

pub fn end_session() {
    set_cookie("", 0);
}

/// A page asked for without a session: answer `302 Found` to the login page, whoever asks.
pub fn redirect_to_login(login: &str) {
    if let (Some(res), Ok(location)) = (use_context::<ResponseOptions>(), HeaderValue::from_str(login)) {
        res.insert_header(header::LOCATION, location);
        res.set_status(StatusCode::FOUND);
    }
}
