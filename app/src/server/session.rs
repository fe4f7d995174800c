//! The session cookie and the guards every server function and page goes through.

use http::request::Parts;
use http::{HeaderName, HeaderValue, StatusCode, header};
use leptos::prelude::*;
use leptos::server_fn::redirect::REDIRECT_HEADER;
use leptos_axum::ResponseOptions;

use crate::api::{Actor, Console, SignedIn};
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

/// The console and the caller's valid session; otherwise `SignedOut` (401 for non-browser
/// callers; browsers posting a form are sent back, and from there to the login page).
pub async fn signed_in() -> Result<(Console, SignedIn), ConsoleError> {
    let console = console()?;
    let Some(token) = current_token() else {
        return Err(failed(ConsoleError::SignedOut));
    };
    match console.session(&token).await.map_err(failed)? {
        Some(session) => Ok((console, session)),
        None => Err(failed(ConsoleError::SignedOut)),
    }
}

/// The console for any signed-in caller (operators and viewers browse alike).
pub async fn authorized() -> Result<Console, ConsoleError> {
    signed_in().await.map(|(console, _)| console)
}

/// The console and the acting operator, for server functions that change something: a viewer
/// is refused (403), whatever its page showed or a forged request says.
pub async fn operator() -> Result<(Console, Actor), ConsoleError> {
    let (console, session) = signed_in().await?;
    if !session.role.can_act() {
        return Err(failed(ConsoleError::Forbidden(
            "this login can browse but not act: log in with the operator password".into(),
        )));
    }
    let address = client_address(&console);
    Ok((console, Actor { session, address }))
}

/// The caller's address as the server resolves it (peer, or a trusted proxy's forward).
pub fn client_address(console: &Console) -> std::net::IpAddr {
    use_context::<Parts>()
        .map(|parts| console.client_address(&parts))
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into())
}

fn accepts_html() -> bool {
    use_context::<Parts>()
        .and_then(|p| {
            p.headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.contains("text/html"))
        })
        .unwrap_or(false)
}

/// Gives an error its HTTP status for callers that read statuses (the wasm client, scripts).
/// Browser navigations keep Leptos's redirect, which carries the error back to the form's page.
pub fn failed(e: ConsoleError) -> ConsoleError {
    let status = match &e {
        ConsoleError::SignedOut | ConsoleError::WrongPassword => StatusCode::UNAUTHORIZED,
        ConsoleError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
        ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
        ConsoleError::Refused(_) => StatusCode::CONFLICT,
        ConsoleError::Invalid(_) => StatusCode::BAD_REQUEST,
        ConsoleError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if !accepts_html()
        && let Some(res) = use_context::<ResponseOptions>()
    {
        res.set_status(status);
        if let ConsoleError::TooManyAttempts { retry_after_secs } = &e {
            res.insert_header(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
    }
    e
}

/// Sends the browser to `path` after the server function: a `302` for a plain form post, the
/// server-function client's redirect header otherwise. Unlike `leptos_axum::redirect`, a path
/// that cannot be a header value is left out instead of panicking (callers pass checked paths;
/// this is the last line).
pub fn redirect(path: &str) {
    let Some(res) = use_context::<ResponseOptions>() else {
        return;
    };
    let Ok(location) = HeaderValue::from_str(path) else {
        return;
    };
    res.insert_header(header::LOCATION, location);
    if accepts_html() {
        res.set_status(StatusCode::FOUND);
    } else {
        res.insert_header(HeaderName::from_static(REDIRECT_HEADER), HeaderValue::from_static(""));
    }
}

fn set_cookie(console: &Console, value: &str, max_age_secs: u64) {
    let secure = if console.secure_cookies() { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}");
    if let (Some(res), Ok(value)) = (use_context::<ResponseOptions>(), HeaderValue::from_str(&cookie)) {
        res.append_header(header::SET_COOKIE, value);
    }
}

pub fn start_session(console: &Console, token: &str, max_age_secs: u64) {
    set_cookie(console, token, max_age_secs);
}

pub fn end_session(console: &Console) {
    set_cookie(console, "", 0);
}

/// A page asked for without a session: answer `302 Found` to the login page, whoever asks.
pub fn redirect_to_login(login: &str) {
    if let (Some(res), Ok(location)) = (use_context::<ResponseOptions>(), HeaderValue::from_str(login)) {
        res.insert_header(header::LOCATION, location);
        res.set_status(StatusCode::FOUND);
    }
}
