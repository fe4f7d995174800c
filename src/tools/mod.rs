//! Tools around the service for the first minutes: a development server with a generated
//! webhook secret, signed sample events from the command line, and a demo history.

pub mod demo;
pub mod dev;
pub mod trigger;
