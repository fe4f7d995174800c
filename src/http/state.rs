//! What every handler may reach. Apart from the router (`mod.rs`) so that the routes, which
//! take it, and the router, which takes the routes, do not import each other.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::*;

use super::assets::Assets;
use crate::actions::Actions;
use crate::config::Config;
use crate::executor::ExecutorHandle;
use crate::store::Store;
use crate::webhook::ingest::Ingest;

/// What every handler may reach: the parts [`crate::Application::build`] started.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<Config>,
    pub store: Store,
    pub ingest: Ingest,
    pub executor: ExecutorHandle,
    /// Operator actions, for the REST API and the console alike.
    pub actions: Actions,
    pub assets: Assets,
}

impl AppState {
    pub fn new(config: Arc<Config>, store: Store, executor: ExecutorHandle, ingest: Ingest) -> Self {
        let assets = Assets::load(&config.site_root);
        let leptos_options = LeptosOptions::builder()
            .output_name("deferral")
            .site_root(config.site_root.as_str())
            .site_pkg_dir(assets.pkg_dir())
            .site_addr(config.site_addr)
            .build();
        AppState {
            leptos_options,
            config,
            actions: Actions::new(store.clone(), executor.clone()),
            store,
            ingest,
            executor,
            assets,
        }
    }
}
