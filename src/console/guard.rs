//! A layer around the console (its pages, server functions and assets): refuses cross-origin
//! posts, and gives every answer the headers a browser needs to keep other sites out.
//!
//! Cross-origin posts: the browser says where a request comes from in `Sec-Fetch-Site` (every
//! current browser) and `Origin`; a post from another site is refused before any server
//! function runs, login included, with JavaScript or a plain form alike. A request carrying
//! neither header does not come from a browser's page (scripts, curl) and cannot ride on a
//! visitor's cookie, so it passes: the same rule as Go's `http.CrossOriginProtection`.
//!
//! Headers: a Content-Security-Policy whose script nonce is made here, per request, and handed
//! to Leptos (`leptos::nonce`) so the hydration scripts it writes carry it; the wasm also
//! needs `'wasm-unsafe-eval'`. No framing, no sniffing, no referrer to other sites, no caching
//! of pages that show operators' data.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use leptos::nonce::Nonce;

use super::client;
use crate::http::state::AppState;

/// What a response's CSP allows: scripts only from here or carrying this response's nonce,
/// the wasm compiled from here, nothing framed or framing, forms posting only here.
fn content_security_policy(nonce: &Nonce) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The host a browser was talking to: `Host`, or what a trusted proxy says it forwarded.
fn served_host(headers: &HeaderMap, from_trusted_proxy: bool) -> Option<&str> {
    let forwarded = from_trusted_proxy
        .then(|| headers.get("x-forwarded-host"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    forwarded.or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
}

/// Whether a request's own headers show it was sent by another site's page.
pub fn cross_origin(headers: &HeaderMap, from_trusted_proxy: bool) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        // `none`: typed in or bookmarked by the user; `same-site` is a sibling subdomain, which
        // is another origin all the same.
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host);
    match (origin_host, served_host(headers, from_trusted_proxy)) {
        (Some(origin), Some(host)) => !origin.eq_ignore_ascii_case(host),
        // `Origin: null` (sandboxed frames, some redirects) or no Host: not provably same-origin.
        _ => true,
    }
}

fn refused() -> Response {
    let body = serde_json::to_string(&app::error::ConsoleError::Forbidden(
        "cross-origin request refused: the console accepts posts from its own pages only".into(),
    ))
    .expect("plain data serialises");
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The headers every console answer carries, refusals included: a refused post is a page of
/// this site like any other, and must not be framed, sniffed or cached either.
fn secure(headers: &mut HeaderMap, nonce: &Nonce, assets: bool) {
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(nonce)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // The compiled assets are the same for everyone and may be cached; pages and answers not.
    if !assets {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let assets = request.uri().path().starts_with("/pkg/");
    let nonce = Nonce::new();
    let refuse = !request.method().is_safe() && {
        let from_proxy = state
            .config
            .trusted_proxies
            .contains(client::peer(request.extensions()));
        cross_origin(request.headers(), from_proxy)
    };
    let mut response = if refuse {
        tracing::warn!(path = %request.uri().path(), origin = ?request.headers().get(header::ORIGIN), "console: cross-origin post refused");
        refused()
    } else {
        request.extensions_mut().insert(nonce.clone());
        next.run(request).await
    };
    secure(response.headers_mut(), &nonce, assets);
    response
}

/// For the Leptos context: the nonce this request's CSP names, so the scripts Leptos writes
/// carry it (it replaces the one `leptos_axum` would make up, which no header names).
pub fn provide_nonce() {
    use leptos::prelude::{provide_context, use_context};
    if let Some(nonce) =
        use_context::<axum::http::request::Parts>().and_then(|parts| parts.extensions.get::<Nonce>().cloned())
    {
        provide_context(nonce);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (header::HeaderName::from_static(k), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn posts_from_other_sites_are_told_apart() {
        assert!(!cross_origin(&headers(&[("sec-fetch-site", "same-origin")]), false));
        assert!(cross_origin(&headers(&[("sec-fetch-site", "cross-site")]), false));
        assert!(cross_origin(&headers(&[("sec-fetch-site", "same-site")]), false));
        let same = headers(&[
            ("origin", "http://console.example:3000"),
            ("host", "console.example:3000"),
        ]);
        assert!(!cross_origin(&same, false));
        let other = headers(&[("origin", "https://evil.example"), ("host", "console.example")]);
        assert!(cross_origin(&other, false));
        assert!(cross_origin(
            &headers(&[("origin", "null"), ("host", "console.example")]),
            false
        ));
        assert!(
            !cross_origin(&headers(&[("host", "console.example")]), false),
            "not a browser"
        );
        let proxied = headers(&[
            ("origin", "https://console.example"),
            ("host", "127.0.0.1:3000"),
            ("x-forwarded-host", "console.example"),
        ]);
        assert!(!cross_origin(&proxied, true));
        assert!(
            cross_origin(&proxied, false),
            "X-Forwarded-Host only from a trusted proxy"
        );
    }
}
