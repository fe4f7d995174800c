//! Tools around the service for the first minutes: a development server with a generated
//! webhook secret, signed sample events from the command line, a demo history, and the
//! reconciliation of events Stripe could not deliver.

pub mod demo;
pub mod dev;
pub mod reconcile;
pub mod trigger;
