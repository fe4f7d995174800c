//! Deferral's vocabulary: what an execution is and which states it passes through, how the
//! console and the REST API filter and page them, the operator's actions, and the local records
//! kept of Stripe's objects.
//!
//! A crate of its own because two others speak it and neither may depend on the other's
//! framework: the store (`deferral::store`) reads and writes these types, and the console
//! (`app`, a Leptos crate compiled to WebAssembly too) renders them. Plain data and validation
//! only: no SQL, no Leptos, no I/O.

pub mod alerts;
pub mod event_types;
pub mod filter;
pub mod model;
pub mod overview;
pub mod records;
pub mod view;
