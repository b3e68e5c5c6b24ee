//! Shared-secret checks. Secrets are compared as SHA-256 digests in
//! constant time ([`secrets_equal`], shared with the supervisor's
//! dashboard), so neither their content nor their length leaks through
//! timing.

pub use openclaw_profiles::token::secrets_equal;

/// Failed-auth limiter (spec §7): 10 wrong credentials within 60 s from
/// one address lock it out for 5 minutes. Loopback is exempt; missing
/// credentials do not count.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    by_addr: std::collections::HashMap<std::net::IpAddr, (Vec<u64>, Option<u64>)>,
}

/// Failures that trigger a lockout.
pub const MAX_FAILURES: usize = 10;
/// The window they are counted in.
pub const WINDOW_MS: u64 = 60_000;
/// How long a lockout lasts.
pub const LOCKOUT_MS: u64 = 300_000;

impl FailureLimiter {
    /// Milliseconds left of `ip`'s lockout at `now`, if locked out.
    pub fn locked(&self, ip: std::net::IpAddr, now: u64) -> Option<u64> {
        if ip.is_loopback() {
            return None;
        }
        let (_, until) = self.by_addr.get(&ip)?;
        until.filter(|&u| u > now).map(|u| u - now)
    }

    /// Records a wrong credential from `ip` at `now`. The table stays
    /// bounded: past [`MAX_TRACKED`] addresses, entries with nothing left to
    /// remember go first, then the least recently seen.
    pub fn failed(&mut self, ip: std::net::IpAddr, now: u64) {
        if ip.is_loopback() {
            return;
        }
        if self.by_addr.len() >= MAX_TRACKED && !self.by_addr.contains_key(&ip) {
            self.prune(now);
        }
        let (times, until) = self.by_addr.entry(ip).or_default();
        times.retain(|&t| now.saturating_sub(t) < WINDOW_MS);
        times.push(now);
        if times.len() >= MAX_FAILURES {
            *until = Some(now + LOCKOUT_MS);
            times.clear();
        }
    }
}

/// Most addresses the limiter remembers at once.
pub const MAX_TRACKED: usize = 4096;

impl FailureLimiter {
    /// Forgets what is over (no lockout running, no failure in the window);
    /// if still full, the least recently seen half.
    fn prune(&mut self, now: u64) {
        self.by_addr.retain(|_, (times, until)| {
            until.is_some_and(|u| u > now)
                || times.iter().any(|&t| now.saturating_sub(t) < WINDOW_MS)
        });
        if self.by_addr.len() >= MAX_TRACKED {
            let mut seen: Vec<(u64, std::net::IpAddr)> = self
                .by_addr
                .iter()
                .map(|(ip, (times, until))| (times.last().copied().max(*until).unwrap_or(0), *ip))
                .collect();
            seen.sort_unstable();
            for (_, ip) in seen.into_iter().take(MAX_TRACKED / 2) {
                self.by_addr.remove(&ip);
            }
        }
    }

    /// How many addresses are remembered.
    pub fn tracked(&self) -> usize {
        self.by_addr.len()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_stays_bounded() {
        let mut l = super::FailureLimiter::default();
        for i in 0..50_000u32 {
            let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            l.failed(ip, u64::from(i));
        }
        assert!(l.tracked() <= super::MAX_TRACKED, "{}", l.tracked());
    }

    #[test]
    fn limiter_locks_out_after_ten_failures_and_spares_loopback() {
        let mut l = super::FailureLimiter::default();
        let remote: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        for i in 0..9 {
            l.failed(remote, 1000 + i);
        }
        assert_eq!(l.locked(remote, 2000), None);
        l.failed(remote, 2000);
        assert_eq!(l.locked(remote, 2000), Some(super::LOCKOUT_MS));
        assert_eq!(l.locked(remote, 2000 + super::LOCKOUT_MS), None);
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        for i in 0..20 {
            l.failed(lo, i);
        }
        assert_eq!(l.locked(lo, 20), None);
        // Old failures leave the window.
        let other: std::net::IpAddr = "10.9.9.9".parse().unwrap();
        for i in 0..9 {
            l.failed(other, i);
        }
        l.failed(other, 100_000);
        assert_eq!(l.locked(other, 100_000), None);
    }

    #[test]
    fn compares() {
        assert!(super::secrets_equal("abc", "abc"));
        assert!(!super::secrets_equal("abc", "abd"));
        assert!(!super::secrets_equal("", "abc"));
    }
}
