//! Who a request comes from: the TCP peer, or, when the peer is one of
//! `DEFERRAL_TRUSTED_PROXIES`, the client that proxy names in `X-Forwarded-For`.
//!
//! Generic "real IP" extractors believe the header from any sender, which lets a client pick
//! its own address (to dodge its login throttle, or to spend someone else's). Here the header
//! counts only when a trusted proxy sent it, and only as far as the chain stays trusted: read
//! from the right, each hop a trusted proxy appended is believed until one that is not.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};

use crate::config::TrustedProxies;
use crate::http::state::AppState;

/// Hops of `X-Forwarded-For` read at most: a longer chain of trusted proxies is not plausible,
/// and the walk stays cheap whatever the header holds.
const MAX_HOPS: usize = 16;

impl TrustedProxies {
    /// The client of a request that arrived from `peer`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            if self.0.is_empty() && headers.contains_key("x-forwarded-for") {
                hint_at_an_unlisted_proxy(client);
            }
            return client;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|v| v.to_str().unwrap_or("").rsplit(','))
            .take(MAX_HOPS);
        for hop in hops {
            // Not an address: believe nothing further left than the proxy that passed it on.
            let Ok(addr) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = addr.to_canonical();
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

/// Said once per process: a forwarded request from a private or loopback address is most
/// likely a reverse proxy nobody listed, and then every client counts as that proxy (one login
/// throttle for all, the proxy's address in the audit log). From a public address the header
/// is more likely a client's own claim, and not worth a warning.
fn hint_at_an_unlisted_proxy(peer: IpAddr) {
    static SAID: AtomicBool = AtomicBool::new(false);
    let nearby = match peer {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local(),
    };
    if nearby && !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            %peer,
            "a request from a private or loopback address carries X-Forwarded-For, which is ignored: \
             DEFERRAL_TRUSTED_PROXIES is empty. If this is your reverse proxy, list it there, or \
             every client counts as the proxy (one login throttle for all)"
        );
    }
}

/// The TCP peer, as `axum::serve` records it (`into_make_service_with_connect_info`), from a
/// request's extensions (`request.extensions()` or `parts.extensions`).
pub fn peer(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The client's address, for handlers: `ClientAddr(ip)` as an extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    pub fn of(parts: &Parts, trusted: &TrustedProxies) -> Self {
        ClientAddr(trusted.client(peer(&parts.extensions), &parts.headers))
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(ClientAddr::of(parts, &state.config.trusted_proxies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, ::1").unwrap();
        let spoofed = headers(&["198.51.100.9"]);
        assert_eq!(trusted.client(ip("203.0.113.1"), &spoofed), ip("203.0.113.1"));
        assert_eq!(trusted.client(ip("10.1.2.3"), &spoofed), ip("198.51.100.9"));
        // The client's own claim left of what the proxies appended is not believed.
        let chain = headers(&["1.1.1.1, 198.51.100.9", "10.0.0.5"]);
        assert_eq!(trusted.client(ip("10.0.0.7"), &chain), ip("198.51.100.9"));
        assert_eq!(trusted.client(ip("10.0.0.7"), &headers(&["junk"])), ip("10.0.0.7"));
        assert_eq!(trusted.client(ip("10.0.0.7"), &headers(&[])), ip("10.0.0.7"));
        assert_eq!(
            trusted.client(ip("::ffff:10.0.0.7"), &spoofed),
            ip("198.51.100.9"),
            "an IPv4 peer on a dual-stack socket"
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.internal").is_err());
        assert_eq!(TrustedProxies::parse(" ").unwrap(), TrustedProxies::default());
    }
}
