//! A TCP proxy in front of PostgreSQL that can stop answering: a connection that is open but
//! silent, as a dropped route, a stuck NAT entry or a frozen server leave it. While blackholed it
//! still accepts connections and takes every byte sent to it, but forwards nothing either way;
//! once passing again it forwards what it held, on the same connections. Stranded, the
//! connections open at that moment stay silent for good while new ones pass: what a restart or a
//! lost NAT entry leaves in a pool, a connection mid-protocol that will never answer.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    passing: Arc<watch::Sender<bool>>,
    /// Connections are numbered as accepted; those numbered below this are stranded.
    stranded_below: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

/// One connection's number and the proxy's stranding mark.
#[derive(Clone)]
struct Link {
    number: u64,
    stranded_below: Arc<AtomicU64>,
}

impl Link {
    fn stranded(&self) -> bool {
        self.number < self.stranded_below.load(Ordering::SeqCst)
    }
}

impl Proxy {
    /// Listens on a free local port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let passing = Arc::new(watch::Sender::new(true));
        let upstream = upstream.to_string();
        let p = passing.clone();
        let stranded_below = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let (mark, count) = (stranded_below.clone(), accepted.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                let link = Link {
                    number: count.fetch_add(1, Ordering::SeqCst),
                    stranded_below: mark.clone(),
                };
                tokio::spawn(forward(client, upstream.clone(), p.subscribe(), link));
            }
        });
        Proxy {
            addr,
            passing,
            stranded_below,
            accepted,
            accept,
        }
    }

    /// `postgres://user@host:port/db` with host and port replaced by the proxy's.
    pub fn url_for(&self, database_url: &str) -> String {
        let (scheme, rest) = database_url.split_once("://").expect("a URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let user = authority
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}{}/{path}", self.addr)
    }

    /// Stops forwarding, in both directions, on every connection (open or new).
    pub fn blackhole(&self) {
        self.passing.send_replace(false);
    }

    /// Forwards again, starting with what was held.
    pub fn pass(&self) {
        self.passing.send_replace(true);
    }

    /// Every connection open now goes silent for good (it keeps taking bytes and never
    /// forwards one, either way); connections made later pass.
    pub fn strand(&self) {
        self.stranded_below
            .store(self.accepted.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `host:port` of a `postgres://` URL.
pub fn host_port(database_url: &str) -> String {
    let rest = database_url.split_once("://").expect("a URL").1;
    let authority = rest.split('/').next().unwrap();
    authority.rsplit_once('@').map_or(authority, |(_, hp)| hp).to_string()
}

async fn forward(client: TcpStream, upstream: String, passing: watch::Receiver<bool>, link: Link) {
    // A new connection during a blackhole is accepted and then hears nothing, as a client would see it.
    let mut gate = passing.clone();
    if gate.wait_for(|p| *p).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = pump(client_read, server_write, passing.clone(), link.clone()) => {}
        _ = pump(server_read, client_write, passing, link) => {}
    }
}

/// Copies `from` to `to`, holding each chunk while the proxy is blackholed, dropping them all
/// once the connection is stranded.
async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut passing: watch::Receiver<bool>,
    link: Link,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            // Stranded, not even an end reaches the other side.
            Ok(0) | Err(_) if link.stranded() => std::future::pending().await,
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if passing.wait_for(|p| *p).await.is_err() {
            return;
        }
        if link.stranded() {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
