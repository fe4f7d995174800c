//! Deferral: Stripe webhooks taken off the request path, verified, stored durably,
//! executed in the background with retries, and steered from a console.
//!
//! [`Application::build`] puts the parts together; `main` only parses the command line.

pub mod actions;
pub mod api;
mod application;
pub mod cli;
pub mod config;
pub mod console;
pub mod executor;
pub mod fixtures;
pub mod handlers;
pub mod http;
pub mod reconcile;
pub mod store;
pub mod stripe;
pub mod telemetry;
pub mod tools;
pub mod webhook;

pub use application::{Application, Running};
