//! Loopback HTTP probes of a gateway's `/healthz` and `/readyz`: a minimal
//! blocking HTTP/1.1 GET over std, so neither binary needs an HTTP client
//! stack for a call to 127.0.0.1. The supervisor and doctor use it, and so
//! does a gateway checking for a healthy incumbent before it yields.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// A probe's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// Response body.
    pub body: String,
}

/// `GET <path>` on 127.0.0.1:`port`, bounded by `timeout` overall.
pub fn get(port: u16, path: &str, timeout: Duration) -> std::io::Result<Answer> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response")
    })
}

/// Parses status and body of a `Connection: close` response.
pub fn parse_response(raw: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(Answer {
        status,
        body: body.to_string(),
    })
}

/// True if `/healthz` answers 200 with `"ok":true` (a catch-all 200 from
/// something else does not count).
pub fn is_live(port: u16, timeout: Duration) -> bool {
    get(port, "/healthz", timeout).is_ok_and(|a| {
        a.status == 200
            && serde_json::from_str::<serde_json::Value>(&a.body)
                .is_ok_and(|v| v["ok"] == serde_json::Value::Bool(true))
    })
}

/// True if `/readyz` answers 200 with `"ready":true`.
pub fn is_ready(port: u16, timeout: Duration) -> bool {
    get(port, "/readyz", timeout).is_ok_and(|a| {
        a.status == 200
            && serde_json::from_str::<serde_json::Value>(&a.body)
                .is_ok_and(|v| v["ready"] == serde_json::Value::Bool(true))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_responses() {
        let a = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!(
            a,
            Answer {
                status: 200,
                body: "{}".into()
            }
        );
        assert_eq!(parse_response(b"garbage"), None);
        assert_eq!(parse_response(b"HTTP/1.1 abc\r\n\r\n"), None);
    }

    #[test]
    fn a_non_gateway_listener_is_not_live() {
        // A server that answers 200 with some other body.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n<html>hi</html>")
                .unwrap();
        });
        assert!(!is_live(port, Duration::from_secs(2)));
        server.join().unwrap();
        // Nothing listening at all.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(!is_live(free, Duration::from_millis(200)));
    }
}
