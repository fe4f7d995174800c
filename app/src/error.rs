//! The one error type every console server function answers with. It crosses the wire as
//! JSON, and for forms posted without JavaScript it travels back in the redirect URL.

use std::fmt;

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsoleError {
    /// No valid session: the caller must log in (HTTP 401 for non-browser callers).
    SignedOut,
    WrongPassword,
    /// Too many failed logins lately; try again after this many seconds.
    TooManyAttempts {
        retry_after_secs: u64,
    },
    /// Signed in, but not allowed: a viewer asking for an operator's action, or a
    /// cross-origin request.
    Forbidden(String),
    NotFound(String),
    /// The action does not apply to the execution in its current state; nothing changed.
    Refused(String),
    /// Bad input (an unknown filter parameter, an invalid cursor…).
    Invalid(String),
    Unavailable(String),
    Internal(String),
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleError::SignedOut => f.write_str("your session has ended: log in again"),
            ConsoleError::WrongPassword => f.write_str("wrong password"),
            ConsoleError::TooManyAttempts { retry_after_secs } => {
                write!(f, "too many failed logins: try again in {retry_after_secs} s")
            }
            ConsoleError::Forbidden(m)
            | ConsoleError::NotFound(m)
            | ConsoleError::Refused(m)
            | ConsoleError::Invalid(m)
            | ConsoleError::Unavailable(m)
            | ConsoleError::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ConsoleError {}

impl FromServerFnError for ConsoleError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => {
                ConsoleError::Invalid(format!("invalid request: {m}"))
            }
            ServerFnErrorErr::Request(m) => ConsoleError::Unavailable(format!("cannot reach the server: {m}")),
            other => ConsoleError::Internal(other.to_string()),
        }
    }
}
