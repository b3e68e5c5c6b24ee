//! Who a client is when a reverse proxy stands in front of the gateway.
//! Forwarding headers (`X-Forwarded-For`, `X-Real-IP`) are believed only
//! from the peers listed in `gateway.trustedProxies` (OpenClaw's key):
//! anyone else could name any address, lock it out, or dodge the lockout by
//! rotating the header. A forwarded connection is never local (spec §6.1),
//! whoever forwarded it.

use std::net::{IpAddr, SocketAddr};

/// One `gateway.trustedProxies` entry: an address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = ip.parse().map_err(|_| {
            format!("gateway.trustedProxies: {s:?} is not an IP address or CIDR block")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                format!("gateway.trustedProxies: {s:?} has an invalid prefix length")
            })?,
        };
        Ok(Self { addr, prefix })
    }

    /// True if `ip` lies in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// True if `ip` is one of the trusted proxies.
pub fn is_trusted(ip: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|c| c.contains(ip))
}

/// The client's address and whether it is local: the socket peer, unless
/// the peer is a trusted proxy that forwarded the connection, then the
/// nearest forwarded address that is not itself a trusted proxy.
pub fn client_addr(
    peer: SocketAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[Cidr],
) -> (IpAddr, bool) {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let proxied = ["x-forwarded-for", "x-real-ip", "forwarded"]
        .iter()
        .any(|h| headers.contains_key(*h));
    let is_trusted = |ip: IpAddr| is_trusted(ip, trusted);
    let mut ip = peer.ip();
    if proxied && is_trusted(ip) {
        // X-Forwarded-For: client, proxy1, proxy2 (each appends the peer it
        // saw): walk back from the nearest hop over trusted proxies.
        let chain: Vec<IpAddr> = header("x-forwarded-for")
            .map(|v| v.split(',').filter_map(|h| h.trim().parse().ok()).collect())
            .unwrap_or_default();
        if let Some(hop) = chain.iter().rev().find(|h| !is_trusted(**h)) {
            ip = *hop;
        } else if let Some(real) = header("x-real-ip").and_then(|v| v.trim().parse().ok()) {
            ip = real;
        }
    }
    (ip, !proxied && peer.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let forged = headers(&[("x-forwarded-for", "10.9.9.9")]);
        // Untrusted peer: the header is ignored for the address, but the
        // connection still is not local.
        assert_eq!(client_addr(lo, &forged, &[]), (lo.ip(), false));
        let trusted = [Cidr::parse("127.0.0.0/8").unwrap()];
        assert_eq!(
            client_addr(lo, &forged, &trusted),
            ("10.9.9.9".parse().unwrap(), false)
        );
        // The nearest untrusted hop wins over what the client claims.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 10.9.9.9, 127.0.0.2")]);
        assert_eq!(
            client_addr(lo, &chain, &trusted).0,
            "10.9.9.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_addr(lo, &headers(&[]), &trusted), (lo.ip(), true));
    }

    #[test]
    fn cidr_blocks() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.200.1.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
    }
}
