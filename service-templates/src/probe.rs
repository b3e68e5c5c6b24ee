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
    /// Response headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: String,
}

impl Answer {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Who answered, from the identity headers of our gateways.
    pub fn identity(&self) -> Option<Identity> {
        use openclaw_profiles::contract::{HEADER_INSTANCE, HEADER_PID, HEADER_PROFILE};
        Some(Identity {
            pid: self.header(HEADER_PID)?.parse().ok()?,
            instance: self.header(HEADER_INSTANCE)?.to_string(),
            profile: self.header(HEADER_PROFILE).map(str::to_string),
        })
    }

    fn json_flag(&self, key: &str) -> bool {
        self.status == 200
            && serde_json::from_str::<serde_json::Value>(&self.body)
                .is_ok_and(|v| v[key] == serde_json::Value::Bool(true))
    }
}

/// The gateway behind a probe answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its pid.
    pub pid: u32,
    /// Its state dir's [`openclaw_profiles::contract::instance_id`].
    pub instance: String,
    /// Its profile.
    pub profile: Option<String>,
}

impl Identity {
    /// `the gateway of profile `a` (pid 42)`.
    pub fn describe(&self) -> String {
        match &self.profile {
            Some(p) => format!("the gateway of profile `{p}` (pid {})", self.pid),
            None => format!("a gateway (pid {})", self.pid),
        }
    }
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
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Answer {
        status,
        headers,
        body: body.to_string(),
    })
}

/// True if `/healthz` answers 200 with `"ok":true` (a catch-all 200 from
/// something else does not count), whoever answers.
pub fn is_live(port: u16, timeout: Duration) -> bool {
    get(port, "/healthz", timeout).is_ok_and(|a| a.json_flag("ok"))
}

/// The live gateway answering `/healthz` on `port`, if any.
pub fn identify(port: u16, timeout: Duration) -> Option<Identity> {
    get(port, "/healthz", timeout)
        .ok()
        .filter(|a| a.json_flag("ok"))?
        .identity()
}

/// True if the gateway of `instance` answers `/healthz` on `port`: a live
/// answer from any other gateway does not count.
pub fn is_live_as(port: u16, timeout: Duration, instance: &str) -> bool {
    get(port, "/healthz", timeout)
        .is_ok_and(|a| a.json_flag("ok") && a.identity().is_some_and(|id| id.instance == instance))
}

/// True if `/readyz` answers 200 with `"ready":true`.
pub fn is_ready(port: u16, timeout: Duration) -> bool {
    get(port, "/readyz", timeout).is_ok_and(|a| a.json_flag("ready"))
}

/// True if the gateway of `instance` answers ready on `port`.
pub fn is_ready_as(port: u16, timeout: Duration, instance: &str) -> bool {
    get(port, "/readyz", timeout).is_ok_and(|a| {
        a.json_flag("ready") && a.identity().is_some_and(|id| id.instance == instance)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_responses() {
        let a = parse_response(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nX-OpenClaw-Pid: 42\r\nx-openclaw-instance: ab\r\n\r\n{}",
        )
        .unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.body, "{}");
        assert_eq!(
            a.identity(),
            Some(Identity {
                pid: 42,
                instance: "ab".into(),
                profile: None
            })
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
