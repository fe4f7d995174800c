//! The console's compiled assets (`target/site/pkg`: the wasm, its JavaScript, the CSS) under a
//! versioned path, so browsers may keep them for a year.
//!
//! The version is a digest of the files themselves (so processes serving the same build agree
//! on it), taken once: pages name `/pkg/{version}/deferral.wasm` (Leptos writes its script tags
//! from `site_pkg_dir`), and a new build gets new names, so `immutable` is safe. cargo-leptos' `hash-files` would do the same
//! but needs a `hash.txt` beside every binary that serves (tests, `make run`, a deployed copy);
//! hashing here needs nothing. Release builds are precompressed (`cargo leptos build
//! --precompress`: brotli at its best quality, which the on-the-fly `CompressionLayer` cannot
//! afford per request), and those `.br` / `.gz` files are served as they are.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use sha2::{Digest, Sha256};
use tower_http::services::ServeDir;

/// The versioned asset folder.
#[derive(Clone, Debug)]
pub struct Assets {
    dir: PathBuf,
    version: String,
}

impl Assets {
    /// The assets in `site_root/pkg`, versioned by their contents (`"none"` when there are none:
    /// a server built without its front end still serves its pages).
    ///
    /// Each folder is read once per process: digesting a debug build's 16 MB wasm takes about a
    /// second, which every test server would otherwise pay again.
    pub fn load(site_root: &str) -> Self {
        static VERSIONS: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
        let dir = Path::new(site_root).join("pkg");
        let mut versions = VERSIONS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let version = versions
            .entry(dir.clone())
            .or_insert_with(|| version_of(&dir).unwrap_or_else(|| "none".into()))
            .clone();
        Assets { dir, version }
    }

    /// Leptos's `site_pkg_dir`: the path the pages name the assets under.
    pub fn pkg_dir(&self) -> String {
        format!("pkg/{}", self.version)
    }

    /// `GET /pkg/{version}/…`: the files, precompressed when a `.br` / `.gz` sits beside them,
    /// cached for a year. Another version's path finds nothing (404).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let files = ServeDir::new(&self.dir).precompressed_br().precompressed_gzip();
        Router::new()
            .nest_service(&format!("/{}", self.pkg_dir()), files)
            .layer(axum::middleware::map_response(cache_for_a_year))
    }
}

/// Found files may be kept for a year (their name changes with them), by any cache, provided it
/// keeps one copy per `Accept-Encoding` (a precompressed answer says so nowhere else). Anything
/// else (a 404 under the current version) is not kept.
async fn cache_for_a_year(mut response: Response) -> Response {
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// A digest of every file below `dir` (paths and contents, in path order), compressed copies
/// left out (they follow from the rest); `None` when `dir` holds no file.
fn version_of(dir: &Path) -> Option<String> {
    let mut files = Vec::new();
    files_below(dir, &mut files);
    if files.is_empty() {
        return None;
    }
    files.sort();
    let mut digest = Sha256::new();
    for path in files {
        digest.update(path.strip_prefix(dir).ok()?.as_os_str().as_encoded_bytes());
        digest.update(std::fs::read(&path).ok()?);
    }
    Some(hex::encode(&digest.finalize()[..8]))
}

/// The files below `dir` (wasm-bindgen puts JavaScript snippets in subfolders), `.br` / `.gz`
/// left out.
fn files_below(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for path in entries.filter_map(|entry| entry.ok().map(|e| e.path())) {
        if path.is_dir() {
            files_below(&path, files);
        } else if !matches!(path.extension().and_then(|e| e.to_str()), Some("br" | "gz")) {
            files.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_follows_the_contents() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(version_of(dir.path()), None);
        std::fs::write(dir.path().join("deferral.wasm"), b"one").unwrap();
        let first = version_of(dir.path()).unwrap();
        std::fs::write(dir.path().join("deferral.wasm.br"), b"compressed").unwrap();
        assert_eq!(version_of(dir.path()).unwrap(), first, "compressed copies do not count");
        std::fs::write(dir.path().join("deferral.wasm"), b"two").unwrap();
        let second = version_of(dir.path()).unwrap();
        assert_ne!(second, first);
        std::fs::create_dir_all(dir.path().join("snippets/app")).unwrap();
        std::fs::write(dir.path().join("snippets/app/inline0.js"), b"x").unwrap();
        assert_ne!(version_of(dir.path()).unwrap(), second, "files in subfolders count");
        assert_eq!(first.len(), 16);
    }
}
