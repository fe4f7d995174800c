//! The scenario harness of the Stripe processing tests: the real Deferral, with or without
//! the fake Stripe API, events submitted as Stripe would deliver them.
#![allow(dead_code)]

use std::time::Duration;

use deferral::config::Config;
use deferral::fixtures::Fixture;
use deferral::store::ExecutionRow;
use domain::model::Action;

use crate::fake_stripe::{FakeStripe, KEY};
use crate::support::TestApp;

pub const WAIT: Duration = Duration::from_secs(20);
/// A fixed point in time the scenarios count from (Stripe seconds).
pub const T: i64 = 1_727_000_000;

pub struct Env {
    pub app: TestApp,
    pub fake: Option<FakeStripe>,
}

impl Env {
    pub async fn with_api() -> Env {
        Env::with_api_and(|_| {}).await
    }

    pub async fn with_api_and(adjust: impl FnOnce(&mut Config)) -> Env {
        let fake = FakeStripe::start().await;
        let url = fake.url.clone();
        let app = TestApp::spawn_with(|c| {
            c.stripe_secret_key = Some(KEY.into());
            c.stripe_api_base = url;
            adjust(c);
        })
        .await;
        Env { app, fake: Some(fake) }
    }

    pub async fn payload_only() -> Env {
        Env {
            app: TestApp::spawn().await,
            fake: None,
        }
    }

    pub fn source(&self) -> &'static str {
        if self.fake.is_some() { "api" } else { "payload" }
    }

    pub fn fake(&self) -> &FakeStripe {
        self.fake.as_ref().expect("a scenario with the API")
    }

    /// Serves the event from the fake Stripe (when there is one) and delivers it signed.
    pub async fn submit(&self, f: &Fixture) -> String {
        if let Some(fake) = &self.fake {
            fake.put_fixture(f);
        }
        self.app.deliver_ok(&f.to_json()).await
    }

    /// Submits and waits for success; the execution says where it read the event.
    pub async fn process(&self, f: &Fixture) -> ExecutionRow {
        let id = self.submit(f).await;
        let row = self.app.wait_for(&id, "succeeded", WAIT).await;
        assert_eq!(row.source.as_deref(), Some(self.source()), "{row:?}");
        row
    }

    /// Re-runs a finished execution, as an operator would, and waits for it.
    pub async fn rerun(&self, row: &ExecutionRow) -> ExecutionRow {
        let again = self.app.store.act(&row.id, Action::Rerun).await.expect("re-run");
        self.app.wait_for(&again.id, "succeeded", WAIT).await
    }

    pub async fn failed(&self, f: &Fixture) -> ExecutionRow {
        let id = self.submit(f).await;
        self.app.wait_for(&id, "failed", WAIT).await
    }
}

/// What the handlers did, without the closing note on the API versions read (`[event in …]`).
pub fn result(row: &ExecutionRow) -> &str {
    let all = row.result.as_deref().unwrap_or_default();
    all.rsplit_once(" [event in API version ").map_or(all, |(head, _)| head)
}

pub fn fixture(ty: &str) -> Fixture {
    Fixture::new(ty).expect("a known type")
}
