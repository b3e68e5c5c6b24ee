//! Bounded polling: tests wait for conditions with a deadline, never with
//! fixed sleeps.

use std::time::{Duration, Instant};

/// Polls `cond` every 20 ms until it holds; panics with `what` after
/// `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
