//! The restart policy, as pure functions of time and history: capped
//! exponential backoff with jitter (first restart immediate), backoff reset
//! after a stable uptime, and crash-loop detection (s6's death tally with a
//! permanent-failure threshold; systemd's `StartLimitBurst`).

use std::time::Duration;

/// Tunables of the restart policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Delay before the 2nd consecutive restart; doubles after that.
    pub base_delay: Duration,
    /// Largest delay.
    pub max_delay: Duration,
    /// A gateway up this long resets the backoff.
    pub stable_after: Duration,
    /// This many unexpected deaths ...
    pub crash_loop_deaths: usize,
    /// ... within this window mean `failed`.
    pub crash_loop_window: Duration,
    /// systemd-style fixed delay for every restart, instead of backoff.
    pub fixed_delay: Option<Duration>,
}

/// `OPENCLAWCTL_RESTART_DELAY_MS`: a fixed restart delay (systemd's
/// `RestartSec`), replacing the backoff. Used by the benchmark's baseline.
pub const ENV_FIXED_DELAY: &str = "OPENCLAWCTL_RESTART_DELAY_MS";

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            crash_loop_deaths: 5,
            crash_loop_window: Duration::from_secs(60),
            fixed_delay: None,
        }
    }
}

impl RestartPolicy {
    /// The default policy with `OPENCLAWCTL_RESTART_DELAY_MS` applied.
    pub fn from_env(env: &openclaw_profiles::paths::EnvSnapshot) -> Self {
        let fixed_delay = env
            .get(ENV_FIXED_DELAY)
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        Self {
            fixed_delay,
            ..Self::default()
        }
    }

    /// Delay before restart number `consecutive` (1 = the first restart
    /// after a stable run), before jitter.
    pub fn backoff(&self, consecutive: u32) -> Duration {
        if let Some(d) = self.fixed_delay {
            return d;
        }
        if consecutive <= 1 {
            return Duration::ZERO;
        }
        let exp = (consecutive - 2).min(20);
        self.base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay)
    }

    /// The delay before restart number `consecutive`, with jitter: the
    /// backoff spread by ±20 % so that many keepers do not restart in step
    /// (`unit` is a random number in `[0, 1)`); a fixed delay is exact, as
    /// systemd's `RestartSec`.
    pub fn delay(&self, consecutive: u32, unit: f64) -> Duration {
        let d = self.backoff(consecutive);
        if self.fixed_delay.is_some() {
            d
        } else {
            Self::jitter(d, unit)
        }
    }

    /// `delay` spread by ±20 %; `unit` is a random number in `[0, 1)`.
    pub fn jitter(delay: Duration, unit: f64) -> Duration {
        delay.mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0))
    }

    /// True if `deaths` (ms timestamps, any order) hold a crash loop at
    /// `now_ms`: at least `crash_loop_deaths` within the window.
    pub fn is_crash_loop(&self, deaths: &[u64], now_ms: u64) -> bool {
        let window = self.crash_loop_window.as_millis() as u64;
        deaths
            .iter()
            .filter(|&&t| now_ms.saturating_sub(t) <= window)
            .count()
            >= self.crash_loop_deaths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_immediate_then_doubles_to_a_cap() {
        let p = RestartPolicy::default();
        let ms: Vec<u128> = (1..=10).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(
            ms,
            vec![0, 250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
        );
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn fixed_delay_replaces_backoff() {
        let env = openclaw_profiles::paths::EnvSnapshot::from_pairs([(ENV_FIXED_DELAY, "5000")]);
        let p = RestartPolicy::from_env(&env);
        assert_eq!(p.backoff(1), Duration::from_secs(5));
        assert_eq!(p.backoff(7), Duration::from_secs(5));
        assert_eq!(
            p.delay(3, 0.0),
            Duration::from_secs(5),
            "no jitter on a fixed delay"
        );
        assert_eq!(
            RestartPolicy::default().delay(2, 0.0),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let d = Duration::from_millis(1000);
        assert_eq!(RestartPolicy::jitter(d, 0.0), Duration::from_millis(800));
        assert_eq!(RestartPolicy::jitter(d, 0.5), Duration::from_millis(1000));
        assert!(RestartPolicy::jitter(d, 0.999_999) <= Duration::from_millis(1200));
        assert_eq!(RestartPolicy::jitter(Duration::ZERO, 0.7), Duration::ZERO);
    }

    #[test]
    fn crash_loop_counts_only_deaths_inside_the_window() {
        let p = RestartPolicy::default();
        let now = 1_000_000;
        assert!(!p.is_crash_loop(&[now; 4], now));
        assert!(p.is_crash_loop(&[now; 5], now));
        let old = now - 61_000;
        assert!(!p.is_crash_loop(&[old, old, now, now, now, now], now));
    }
}
