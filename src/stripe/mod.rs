//! The Stripe API, as much of it as the handlers need: re-fetching an event (or the
//! object it is about) and telling a failure worth retrying from one that is not.

mod budget;
mod client;
mod error;
mod event;

pub use budget::{Budget, HOLD, HOLD_LATER_CALLS, Mode, Rates, attempt};
pub use client::{Client, Timeouts};
pub use error::StripeError;
pub use event::{Event, EventData};
