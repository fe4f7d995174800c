//! The Stripe API, as much of it as the handlers need: re-fetching an event (or the
//! objects it is about) in a known API version, and telling a failure worth retrying from
//! one that is not.

mod client;
mod error;
mod event;
pub mod version;

pub use client::{Client, Timeouts};
pub use error::StripeError;
pub use event::{Event, EventData};
pub use version::API_VERSION;
