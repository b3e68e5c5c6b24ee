//! One WebSocket of the control plane: the HTTP upgrade, then frames.
//!
//! tungstenite reads (and answers pings and closes); our text frames are
//! written straight to the socket. tungstenite would copy each message into
//! an output buffer that keeps the capacity of the largest message it ever
//! sent (a `hello-ok` of 2–5 KB, or a multi-megabyte `config.get`) for the
//! life of the connection; with thousands of idle sockets that is most of
//! their memory. A server's frames are unmasked, so one is a 2–10 byte
//! header and the payload: written in one `write` from a transient buffer.

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

pub use tokio_tungstenite::tungstenite::protocol::CloseFrame;

type Stream = WebSocketStream<TokioIo<Upgraded>>;

/// An upgraded WebSocket (boxed: a connection's task holds a pointer, not
/// the stream's few hundred bytes in every state of its future).
pub struct Socket(Box<Stream>);

/// A WebSocket upgrade request: its `Sec-WebSocket-Key` and the hook that
/// yields the connection once the `101` is out.
pub struct Upgrade {
    key: String,
    on_upgrade: OnUpgrade,
}

fn has_token(headers: &header::HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

impl Upgrade {
    /// The upgrade `req` asks for, if it is a valid RFC 6455 one (GET,
    /// `Connection: upgrade`, `Upgrade: websocket`, version 13, a key);
    /// `None` for any other request.
    pub fn from_request(req: &mut axum::extract::Request) -> Option<Self> {
        let headers = req.headers();
        let valid = req.method() == Method::GET
            && has_token(headers, header::CONNECTION, "upgrade")
            && has_token(headers, header::UPGRADE, "websocket")
            && headers
                .get(header::SEC_WEBSOCKET_VERSION)
                .is_some_and(|v| v == "13");
        let key = headers.get(header::SEC_WEBSOCKET_KEY)?.to_str().ok()?;
        if !valid {
            return None;
        }
        let key = key.to_string();
        let on_upgrade = req.extensions_mut().remove::<OnUpgrade>()?;
        Some(Self { key, on_upgrade })
    }

    /// Answers `101 Switching Protocols` and runs `serve` on the socket in
    /// a task of its own once the connection has switched.
    pub fn on_upgrade<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let stream = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            serve(Socket(Box::new(stream))).await;
        });
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .body(Body::empty())
            .unwrap_or_default()
    }
}

/// The header of an unmasked, final text frame of `len` payload bytes.
fn text_header(len: usize, out: &mut Vec<u8>) {
    out.push(0x81);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(n) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

impl Socket {
    /// The next message (pings are answered by tungstenite); `None` once
    /// the peer is gone.
    pub async fn recv(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        self.0.next().await
    }

    /// Sends one message: text straight to the socket, anything else
    /// (pings, closes) through tungstenite.
    pub async fn send(&mut self, msg: Message) -> Result<(), tungstenite::Error> {
        match msg {
            Message::Text(t) => self.send_text(t.as_str()).await,
            other => self.0.send(other).await,
        }
    }

    /// Writes one text frame. Whatever tungstenite still holds (a pong it
    /// owes) goes out first, so frames never interleave.
    pub async fn send_text(&mut self, text: &str) -> Result<(), tungstenite::Error> {
        self.send_texts(&[text]).await
    }

    /// Writes text frames, one after the other, in one write.
    pub async fn send_texts<T: AsRef<str>>(
        &mut self,
        texts: &[T],
    ) -> Result<(), tungstenite::Error> {
        self.0.flush().await?;
        let len: usize = texts.iter().map(|t| t.as_ref().len() + 10).sum();
        let mut frames = Vec::with_capacity(len);
        for text in texts {
            let text = text.as_ref().as_bytes();
            text_header(text.len(), &mut frames);
            frames.extend_from_slice(text);
        }
        self.0
            .get_mut()
            .write_all(&frames)
            .await
            .map_err(tungstenite::Error::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::FrameHeader;

    /// Our headers are what tungstenite itself parses back, at each of
    /// the three length encodings and their edges.
    #[test]
    fn text_headers_parse_as_tungstenite_frames() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 1 << 24] {
            let mut buf = Vec::new();
            text_header(len, &mut buf);
            let mut cursor = std::io::Cursor::new(buf.as_slice());
            let (header, parsed) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert_eq!(parsed, len as u64, "length {len}");
            assert!(header.is_final);
            assert_eq!(header.mask, None);
            assert_eq!(
                header.opcode,
                tungstenite::protocol::frame::coding::OpCode::Data(
                    tungstenite::protocol::frame::coding::Data::Text
                )
            );
            assert_eq!(cursor.position() as usize, buf.len(), "length {len}");
        }
    }
}
