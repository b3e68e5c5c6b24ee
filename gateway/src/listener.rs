//! The accept loop, bounded as nginx bounds it: every phase before
//! `hello-ok` has a deadline (request headers here, the first frame in
//! [`crate::ws`]), connections that have not authenticated are capped in
//! total and per address (past the cap they are shed at once with a 503),
//! one spare descriptor is kept so that running out of descriptors never
//! starves the listener (the pending connection is accepted and closed
//! instead of spinning on `EMFILE`), and a stop closes everything that is
//! still in its HTTP phase at once instead of waiting for it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower_service::Service;

use crate::server::Gateway;

/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections that have not authenticated yet, in all.
pub const MAX_PREAUTH: usize = 1024;
/// Connections that have not authenticated yet, from one address.
pub const MAX_PREAUTH_PER_ADDR: usize = 256;

/// Counts connections that have not authenticated.
#[derive(Debug)]
pub struct Admission {
    total: AtomicUsize,
    by_addr: Mutex<HashMap<IpAddr, usize>>,
    limits: (usize, usize),
}

impl Admission {
    /// At most `total` unauthenticated connections, `per_addr` from one address.
    pub fn with_limits(total: usize, per_addr: usize) -> Self {
        Self {
            total: AtomicUsize::new(0),
            by_addr: Mutex::new(HashMap::new()),
            limits: (total, per_addr),
        }
    }

    /// A slot for a new connection from `ip`, or `None` past a cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<PreAuth> {
        let (total, per_addr) = self.limits;
        let mut by_addr = self.by_addr.lock().ok()?;
        let mine = by_addr.entry(ip).or_default();
        if *mine >= per_addr || self.total.load(Ordering::Relaxed) >= total {
            if *mine == 0 {
                by_addr.remove(&ip);
            }
            return None;
        }
        *mine += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(PreAuth {
            admission: self.clone(),
            ip,
            authenticated: Arc::default(),
            oversized: Arc::default(),
        })
    }

    /// Connections that hold a slot now.
    pub fn pending(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

/// A connection's slot until it authenticates (or goes away).
#[derive(Debug)]
pub struct PreAuth {
    admission: Arc<Admission>,
    ip: IpAddr,
    /// Read by the connection's frame guard: set once this slot is let go.
    authenticated: Arc<std::sync::atomic::AtomicBool>,
    /// Set by the frame guard when it refused an oversized frame.
    oversized: Arc<std::sync::atomic::AtomicBool>,
}

impl PreAuth {
    /// True if the frame guard cut this connection off for a frame above
    /// the pre-auth limit.
    pub fn oversized(&self) -> bool {
        self.oversized.load(Ordering::Relaxed)
    }
}

impl Drop for PreAuth {
    fn drop(&mut self) {
        self.authenticated.store(true, Ordering::Relaxed);
        self.admission.total.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut by_addr) = self.admission.by_addr.lock()
            && let Some(n) = by_addr.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                by_addr.remove(&self.ip);
            }
        }
    }
}

/// The slot of one connection, shared by its requests: the WebSocket
/// upgrade takes it and drops it at `hello-ok`.
#[derive(Debug, Clone)]
pub struct Slot(Arc<Mutex<Option<PreAuth>>>);

impl Slot {
    /// Takes the slot (once).
    pub fn take(&self) -> Option<PreAuth> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (a gateway holds one
/// descriptor per client). Returns `(before, after)`.
pub fn raise_nofile_limit() -> Option<(u64, u64)> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).ok()?;
    }
    Some((soft, hard))
}

const SHED: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == nix::libc::EMFILE || code == nix::libc::ENFILE
    )
}

/// Serves `app` on `listener` until `gw.shutdown` fires; returns when the
/// listener is closed (open WebSockets are the caller's to drain).
pub async fn serve(gw: Arc<Gateway>, listener: tokio::net::TcpListener, app: axum::Router) {
    // One descriptor held back for the moment the process runs out.
    let mut spare: Option<std::fs::File> = std::fs::File::open("/dev/null").ok();
    let shutdown = gw.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if out_of_descriptors(&e) => {
                // Free the spare, take the waiting connection and close it:
                // the listener stays serviceable and the client learns at once.
                drop(spare.take());
                if let Ok((s, _)) = listener.accept().await {
                    drop(s);
                }
                spare = std::fs::File::open("/dev/null").ok();
                tracing::warn!("out of file descriptors: shedding new connections");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        // Small frames go out at once (a handshake is a few of them).
        let _ = stream.set_nodelay(true);
        let Some(slot) = gw.admission.admit(peer.ip()) else {
            let _ = stream.try_write(SHED);
            tracing::debug!(ip = %peer.ip(), "pre-auth connection cap reached: shed");
            continue;
        };
        // Frames above the pre-auth limit are refused from their header
        // until this connection's slot is let go at hello-ok.
        let stream = crate::frameguard::Guarded::new(
            stream,
            crate::protocol::PREAUTH_MAX_BYTES,
            slot.authenticated.clone(),
            slot.oversized.clone(),
        );
        let slot = Slot(Arc::new(Mutex::new(Some(slot))));
        let app = app.clone();
        let shutdown = shutdown.clone();
        let header_timeout = gw.header_timeout;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req.extensions_mut().insert(slot.clone());
                let mut app = app.clone();
                async move { app.call(req).await }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(64 * 1024);
            let conn = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            // A stop closes whatever is still in its HTTP phase now (an
            // upgraded WebSocket lives on in its own task and drains).
            tokio::select! {
                _ = conn => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_caps_total_and_per_address_and_frees_on_drop() {
        let a = Arc::new(Admission::with_limits(3, 2));
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = a.admit(one).unwrap();
        let _s2 = a.admit(one).unwrap();
        assert!(a.admit(one).is_none(), "per-address cap");
        let _s3 = a.admit(two).unwrap();
        assert!(a.admit(two).is_none(), "total cap");
        drop(s1);
        let s4 = a.admit(two);
        assert!(s4.is_some());
        assert_eq!(a.pending(), 3);
        drop(s4);
        assert_eq!(a.pending(), 2);
    }

    #[test]
    fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
        let (_, hard) = raise_nofile_limit().unwrap();
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, hard);
    }
}
