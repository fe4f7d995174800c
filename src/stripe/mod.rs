//! The Stripe API, as much of it as Deferral needs: re-fetching an event (or the objects
//! it is about) in a known API version, listing the events Stripe could not deliver, and
//! telling a failure worth retrying from one that is not.

mod budget;
mod client;
mod error;
mod event;
mod list;
pub mod version;

pub use budget::{Budget, HOLD, HOLD_LATER_CALLS, Mode, Rates, attempt};
pub use client::{Client, Timeouts};
pub use error::StripeError;
pub use event::{Event, EventData};
pub use list::{EventListQuery, EventPage, MAX_TYPES, PAGE_LIMIT, TypeFilter};
pub use version::API_VERSION;
