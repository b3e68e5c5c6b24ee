//! Refuses oversized WebSocket frames of unauthenticated clients from the
//! frame header, before their payload is buffered. The guard sits under the
//! HTTP and WebSocket layers on the raw socket: it finds the end of each
//! HTTP request head, and after a WebSocket upgrade request it reads every
//! frame header (skipping payloads), so a stranger who announces a 24 MB
//! frame is cut off after a few bytes instead of holding 24 MB. Once the
//! connection has authenticated (`hello-ok`), the WebSocket layer's own
//! limit (`maxPayload`, also checked from the header) is the only one.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where the byte stream is.
#[derive(Debug)]
enum Phase {
    /// An HTTP request head; `matched` bytes of `\r\n\r\n` seen, and the head
    /// so far (bounded) to tell an upgrade.
    Http { matched: u8, head: Vec<u8> },
    /// WebSocket frames: a header being collected, or payload to skip.
    Frames {
        header: Vec<u8>,
        skip: u64,
        message: u64,
    },
    /// No more checks.
    Pass,
}

/// A socket with the pre-auth frame limit.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    phase: Phase,
    limit: u64,
    authenticated: Arc<AtomicBool>,
    oversized: Arc<AtomicBool>,
}

impl<S> Guarded<S> {
    /// Guards `inner`: frames above `limit` bytes are refused until
    /// `authenticated` is set; a refusal sets `oversized` (so that the
    /// WebSocket layer can still say 1009 on the way out).
    pub fn new(
        inner: S,
        limit: usize,
        authenticated: Arc<AtomicBool>,
        oversized: Arc<AtomicBool>,
    ) -> Self {
        Self {
            inner,
            phase: Phase::Http {
                matched: 0,
                head: Vec::new(),
            },
            limit: limit as u64,
            authenticated,
            oversized,
        }
    }

    /// Looks at bytes just read; an error ends the connection.
    fn inspect(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.phase {
                Phase::Pass => return Ok(()),
                Phase::Http { matched, head } => {
                    let b = bytes[0];
                    bytes = &bytes[1..];
                    if head.len() < 8192 {
                        head.push(b.to_ascii_lowercase());
                    }
                    let want = b"\r\n\r\n"[*matched as usize];
                    *matched = if b == want {
                        *matched + 1
                    } else if b == b'\r' {
                        1
                    } else {
                        0
                    };
                    if *matched == 4 {
                        let upgrade = head.windows(9).any(|w| w == b"websocket");
                        self.phase = if upgrade {
                            Phase::Frames {
                                header: Vec::with_capacity(14),
                                skip: 0,
                                message: 0,
                            }
                        } else {
                            Phase::Http {
                                matched: 0,
                                head: Vec::new(),
                            }
                        };
                    }
                }
                Phase::Frames {
                    header,
                    skip,
                    message,
                } => {
                    if self.authenticated.load(Ordering::Relaxed) {
                        self.phase = Phase::Pass;
                        return Ok(());
                    }
                    if *skip > 0 {
                        let n = (*skip).min(bytes.len() as u64);
                        *skip -= n;
                        bytes = &bytes[n as usize..];
                        continue;
                    }
                    header.push(bytes[0]);
                    bytes = &bytes[1..];
                    let Some((payload, fin, control)) = parse_header(header) else {
                        continue;
                    };
                    header.clear();
                    if !control {
                        *message += payload;
                    }
                    if payload > self.limit || *message > self.limit {
                        self.oversized.store(true, Ordering::Relaxed);
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "frame larger than the pre-auth limit",
                        ));
                    }
                    if fin && !control {
                        *message = 0;
                    }
                    *skip = payload;
                }
            }
        }
        Ok(())
    }
}

/// A complete frame header's payload length, FIN bit and whether it is a
/// control frame; `None` while more header bytes are needed.
fn parse_header(h: &[u8]) -> Option<(u64, bool, bool)> {
    if h.len() < 2 {
        return None;
    }
    let fin = h[0] & 0x80 != 0;
    let control = h[0] & 0x08 != 0;
    let masked = h[1] & 0x80 != 0;
    let (len_bytes, short) = match h[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let need = 2 + len_bytes + if masked { 4 } else { 0 };
    if h.len() < need {
        return None;
    }
    let len = short.unwrap_or_else(|| {
        h[2..2 + len_bytes]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    });
    Some((len, fin, control))
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(this.phase, Phase::Pass) {
            return polled;
        }
        match polled {
            Poll::Ready(Ok(())) => Poll::Ready(this.inspect(&buf.filled()[before..])),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> (Guarded<()>, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        (Guarded::new((), 65_536, flag.clone(), Arc::default()), flag)
    }

    const UPGRADE: &[u8] =
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

    /// A masked client frame header announcing `len` bytes.
    fn header(len: u64, fin: bool) -> Vec<u8> {
        let mut h = vec![if fin { 0x81 } else { 0x01 }, 0x80 | 127];
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    #[test]
    fn a_huge_frame_is_refused_from_its_header_byte_by_byte() {
        let (mut g, _) = guard();
        g.inspect(UPGRADE).unwrap();
        let h = header(24 * 1024 * 1024, true);
        let (last, first) = h.split_last().unwrap();
        for b in first {
            g.inspect(&[*b]).unwrap();
        }
        assert!(g.inspect(&[*last]).is_err());
    }

    #[test]
    fn small_frames_pass_and_fragments_add_up() {
        let (mut g, _) = guard();
        g.inspect(UPGRADE).unwrap();
        let mut stream = header(10, true);
        stream.extend_from_slice(&[0; 10]);
        g.inspect(&stream).unwrap();
        // Three unfinished fragments of 30 KiB: the message passes 64 KiB.
        let mut frag = header(30 * 1024, false);
        frag.extend(std::iter::repeat_n(0, 30 * 1024));
        g.inspect(&frag).unwrap();
        g.inspect(&frag).unwrap();
        assert!(g.inspect(&frag[..14]).is_err());
    }

    #[test]
    fn after_authentication_the_guard_steps_aside() {
        let (mut g, flag) = guard();
        g.inspect(UPGRADE).unwrap();
        flag.store(true, Ordering::Relaxed);
        g.inspect(&header(10 * 1024 * 1024, true)).unwrap();
    }

    proptest::proptest! {
        /// However the bytes are split across reads, an oversized frame
        /// after any number of small ones is caught, and random bytes
        /// never panic the guard.
        #[test]
        fn split_streams_are_judged_the_same(
            small in proptest::collection::vec(0u64..2000, 0..6),
            big in 65_537u64..(1 << 40),
            cuts in proptest::collection::vec(1usize..40, 1..30),
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
        ) {
            let mut stream = UPGRADE.to_vec();
            for len in &small {
                stream.extend(header(*len, true));
                stream.extend(std::iter::repeat_n(0u8, *len as usize));
            }
            stream.extend(header(big, true));
            let (mut g, _) = guard();
            let mut rest = &stream[..];
            let mut refused = false;
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*cut).min(rest.len());
                if g.inspect(&rest[..n]).is_err() {
                    refused = true;
                    break;
                }
                rest = &rest[n..];
            }
            proptest::prop_assert!(refused);
            let (mut g, _) = guard();
            let _ = g.inspect(UPGRADE);
            let _ = g.inspect(&noise);
        }
    }

    #[test]
    fn plain_http_is_never_read_as_frames() {
        let (mut g, _) = guard();
        g.inspect(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        g.inspect(&header(24 * 1024 * 1024, true)).unwrap();
    }
}
