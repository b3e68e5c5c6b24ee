//! The port plan (supervisor spec §2): which port a gateway serves on, which
//! ports a profile reserves, and how a new profile gets a base port that
//! collides with nothing.

use std::net::{Ipv4Addr, TcpListener};

use crate::contract::{DEFAULT_GATEWAY_PORT, ENV_GATEWAY_PORT};
use crate::paths::EnvSnapshot;

/// Highest offset a profile reserves above its base (CDP range end).
pub const RESERVED_SPAN: u16 = 110;

/// Distance between allocated bases: the smallest step at which two
/// reserved sets never overlap (base..=base+110 is 111 ports).
pub const ALLOCATION_STEP: u16 = RESERVED_SPAN + 1;

/// Which ports a profile reserves above its base.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PortPlan {
    /// OpenClaw's plan: base, +1, +2, +4 and the browser's CDP ports
    /// +11..=+110 (111 ports apart).
    #[default]
    Full,
    /// For gateways that run no browser: base, +1, +2, +4 (5 ports apart),
    /// so that a thousand profiles fit in the port space.
    Compact,
}

impl PortPlan {
    /// Highest offset reserved above the base.
    pub fn span(self) -> u16 {
        match self {
            Self::Full => RESERVED_SPAN,
            Self::Compact => COMPACT_SPAN,
        }
    }

    /// Distance between allocated bases.
    pub fn step(self) -> u16 {
        self.span() + 1
    }

    /// `full` or `compact`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Compact => "compact",
        }
    }

    /// True for the default plan (left out of the registry).
    pub fn is_full(&self) -> bool {
        *self == Self::Full
    }
}

impl std::str::FromStr for PortPlan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Self::Full),
            "compact" => Ok(Self::Compact),
            other => Err(format!("unknown port plan `{other}`: use full or compact")),
        }
    }
}

/// Highest offset the compact plan reserves (the legacy canvas, +4).
pub const COMPACT_SPAN: u16 = 4;

/// The environment variable that tells a gateway its profile's plan (set by
/// `openclawctl` for compact profiles).
pub const ENV_PORT_PLAN: &str = "OPENCLAWCTL_PORT_PLAN";

/// Errors in the port plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `OPENCLAW_GATEWAY_PORT` is not a port number.
    #[error("invalid OPENCLAW_GATEWAY_PORT {0:?}: expected a number from 1 to 65535")]
    BadEnvPort(String),
    /// The base leaves no room for the derived ports.
    #[error("port {0} is too high: a profile reserves {0}..={max}; choose a base of at most {limit}", max = u32::from(*.0) + u32::from(.1.span()), limit = u16::MAX - .1.span())]
    TooHigh(u16, PortPlan),
    /// Port 0 is not a base.
    #[error("port 0 is not a valid gateway port")]
    Zero,
    /// The reserved set overlaps another profile's.
    #[error(
        "port {base} overlaps profile `{profile}` (base {other_base}, ports {other_base}..={other_end}); choose a base outside that range"
    )]
    Overlaps {
        /// The candidate base.
        base: u16,
        /// The profile it collides with.
        profile: String,
        /// That profile's base.
        other_base: u16,
        /// That profile's highest reserved port.
        other_end: u32,
    },
    /// A reserved port is in use right now.
    #[error(
        "port {port} (reserved by base {base}) is in use by another process; choose another base or stop that process"
    )]
    Busy {
        /// The candidate base.
        base: u16,
        /// The busy port.
        port: u16,
    },
    /// No base could be found.
    #[error("no free port range found from {0} upward; pass --port")]
    Exhausted(u16),
}

/// The ports a profile with base `base` reserves: base, +1 (legacy bridge),
/// +2 (browser control), +4 (legacy canvas), +11..=+110 (CDP).
///
/// ```
/// let ports = openclaw_profiles::ports::reserved_ports(18789).unwrap();
/// assert_eq!(&ports[..5], &[18789, 18790, 18791, 18793, 18800]);
/// assert_eq!(ports.last(), Some(&18899));
/// ```
pub fn reserved_ports(base: u16) -> Result<Vec<u16>, Error> {
    reserved_ports_of(base, PortPlan::Full)
}

/// The ports a profile with base `base` reserves under `plan`.
///
/// ```
/// use openclaw_profiles::ports::{PortPlan, reserved_ports_of};
/// assert_eq!(reserved_ports_of(20000, PortPlan::Compact).unwrap(), [20000, 20001, 20002, 20004]);
/// ```
pub fn reserved_ports_of(base: u16, plan: PortPlan) -> Result<Vec<u16>, Error> {
    check_base(base, plan)?;
    let mut ports = vec![base, base + 1, base + 2, base + 4];
    if plan == PortPlan::Full {
        ports.extend((11..=RESERVED_SPAN).map(|o| base + o));
    }
    Ok(ports)
}

fn check_base(base: u16, plan: PortPlan) -> Result<(), Error> {
    if base == 0 {
        return Err(Error::Zero);
    }
    if base > u16::MAX - plan.span() {
        return Err(Error::TooHigh(base, plan));
    }
    Ok(())
}

/// True if the reserved sets of bases `a` and `b` share a port.
pub fn overlaps(a: u16, b: u16) -> bool {
    overlaps_of((a, PortPlan::Full), (b, PortPlan::Full))
}

/// True if the reserved sets of `(base, plan)` `a` and `b` share a port.
pub fn overlaps_of(a: (u16, PortPlan), b: (u16, PortPlan)) -> bool {
    let end = |(base, plan): (u16, PortPlan)| u32::from(base) + u32::from(plan.span());
    // Disjoint spans first: the common case costs two comparisons.
    if end(a) < u32::from(b.0) || end(b) < u32::from(a.0) {
        return false;
    }
    let (Ok(pa), Ok(pb)) = (reserved_ports_of(a.0, a.1), reserved_ports_of(b.0, b.1)) else {
        return false;
    };
    pa.iter().any(|p| pb.contains(p))
}

/// The gateway port: `--port` > `OPENCLAW_GATEWAY_PORT` > `gateway.port` >
/// 18789.
pub fn resolve_gateway_port(
    flag: Option<u16>,
    env: &EnvSnapshot,
    config: Option<u16>,
) -> Result<u16, Error> {
    if let Some(p) = flag {
        return Ok(p);
    }
    if let Some(raw) = env.get(ENV_GATEWAY_PORT) {
        return match raw.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(Error::BadEnvPort(raw.to_string())),
        };
    }
    Ok(config.unwrap_or(DEFAULT_GATEWAY_PORT))
}

/// True if `port` can be bound on 127.0.0.1 right now. std sets
/// `SO_REUSEADDR`, so a port in `TIME_WAIT` counts as free while a live
/// listener does not.
pub fn is_port_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// An existing profile's base, for collision checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The profile's name.
    pub profile: String,
    /// Its base port.
    pub base: u16,
    /// Its plan.
    pub plan: PortPlan,
}

/// Checks that `base`'s reserved set under `plan` overlaps no claim and
/// that every reserved port passes `is_free`.
pub fn check_base_available(
    base: u16,
    plan: PortPlan,
    claims: &[Claim],
    is_free: &dyn Fn(u16) -> bool,
) -> Result<(), Error> {
    let ports = reserved_ports_of(base, plan)?;
    if let Some(c) = claims
        .iter()
        .find(|c| overlaps_of((base, plan), (c.base, c.plan)))
    {
        return Err(Error::Overlaps {
            base,
            profile: c.profile.clone(),
            other_base: c.base,
            other_end: u32::from(c.base) + u32::from(c.plan.span()),
        });
    }
    if let Some(&port) = ports.iter().find(|&&p| !is_free(p)) {
        return Err(Error::Busy { base, port });
    }
    Ok(())
}

/// The port OpenClaw's own CLI gives a profile whatever its config says:
/// `--profile dev` sets `OPENCLAW_GATEWAY_PORT=19001` when it is unset
/// (supervisor spec §1.1, §1.3), so every client of profile `dev` goes to
/// 19001 and its gateway must serve there.
pub fn implied_port(profile: &crate::ProfileName) -> Option<u16> {
    (profile.as_str() == "dev").then_some(DEV_PROFILE_PORT)
}

/// The port a profile's gateway serves on when a supervisor starts it with
/// a clean environment: the port implied by its name ([`implied_port`]),
/// else `gateway.port` from its config, else 18789.
pub fn profile_port(profile: &crate::ProfileName, config: Option<u16>) -> u16 {
    implied_port(profile)
        .or(config)
        .unwrap_or(DEFAULT_GATEWAY_PORT)
}

/// The port of profile `dev` (see [`implied_port`]).
pub const DEV_PROFILE_PORT: u16 = 19001;

/// The kernel's ephemeral port range (`/proc/sys/net/ipv4/ip_local_port_range`),
/// where outgoing connections get their local ports: a listener placed there
/// can find its port taken by any client. `None` where it cannot be read.
pub fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<u16>().ok());
    Some((it.next()??, it.next()??))
}

/// Finds the first base at `start + k * plan.step()` whose reserved set
/// overlaps no claim, stays out of `avoid` (the ephemeral range), and is
/// free now.
pub fn allocate_base(
    start: u16,
    plan: PortPlan,
    claims: &[Claim],
    avoid: Option<(u16, u16)>,
    is_free: &dyn Fn(u16) -> bool,
) -> Result<u16, Error> {
    check_base(start, plan)?;
    // Claims by base: a candidate is checked against the few whose span
    // can reach it, so an allocation among n profiles costs O(n log n),
    // not O(n²).
    let mut sorted: Vec<(u16, PortPlan)> = claims.iter().map(|c| (c.base, c.plan)).collect();
    sorted.sort_unstable_by_key(|c| c.0);
    let mut base = start;
    loop {
        let end = u32::from(base) + u32::from(plan.span());
        let in_avoided = avoid.is_some_and(|(lo, hi)| u32::from(lo) <= end && base <= hi);
        let from = sorted.partition_point(|c| c.0 < base.saturating_sub(RESERVED_SPAN));
        let clash = sorted[from..]
            .iter()
            .take_while(|c| u32::from(c.0) <= end)
            .any(|&c| overlaps_of((base, plan), c));
        let ports_free =
            || reserved_ports_of(base, plan).is_ok_and(|ports| ports.iter().all(|&p| is_free(p)));
        if !in_avoided && !clash && ports_free() {
            return Ok(base);
        }
        match base.checked_add(plan.step()) {
            Some(next) if next <= u16::MAX - plan.span() => base = next,
            _ => return Err(Error::Exhausted(start)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Environment pairs of a table row.
    type Vars = &'static [(&'static str, &'static str)];
    /// flag, env, config, expected port.
    type Row = (Option<u16>, Vars, Option<u16>, Result<u16, Error>);

    fn claim(profile: &str, base: u16) -> Claim {
        Claim {
            profile: profile.into(),
            base,
            plan: PortPlan::Full,
        }
    }

    #[test]
    fn compact_profiles_are_five_ports_apart_and_never_meet_a_full_range() {
        let free = |_| true;
        let mut claims = Vec::new();
        let mut bases = Vec::new();
        for i in 0..1000 {
            let base = allocate_base(20000, PortPlan::Compact, &claims, None, &free).unwrap();
            claims.push(Claim {
                profile: format!("p{i}"),
                base,
                plan: PortPlan::Compact,
            });
            bases.push(base);
        }
        assert_eq!(bases[..3], [20000, 20005, 20010]);
        assert_eq!(*bases.last().unwrap(), 20000 + 5 * 999);
        // A full profile placed among them skips every compact set, and a
        // compact one avoids a full one's CDP ports.
        let full = allocate_base(20000, PortPlan::Full, &claims, None, &free).unwrap();
        assert!(full >= 25000, "{full}");
        let full_claim = [Claim {
            profile: "f".into(),
            base: 30000,
            plan: PortPlan::Full,
        }];
        assert!(check_base_available(30011, PortPlan::Compact, &full_claim, &free).is_err());
        assert!(check_base_available(30003, PortPlan::Compact, &full_claim, &free).is_err());
        assert!(check_base_available(30111, PortPlan::Compact, &full_claim, &free).is_ok());
        assert!(overlaps_of(
            (30000, PortPlan::Full),
            (29996, PortPlan::Compact)
        ));
        assert!(!overlaps_of(
            (30000, PortPlan::Full),
            (29995, PortPlan::Compact)
        ));
        assert_eq!(
            reserved_ports_of(65535 - 4, PortPlan::Compact).map(|p| p.len()),
            Ok(4)
        );
        assert_eq!("compact".parse(), Ok(PortPlan::Compact));
        assert!("tiny".parse::<PortPlan>().is_err());
    }

    #[test]
    fn reserved_set_matches_spec() {
        let ports = reserved_ports(18789).unwrap();
        assert_eq!(&ports[..4], &[18789, 18790, 18791, 18793]);
        assert_eq!(ports[4], 18800);
        assert_eq!(*ports.last().unwrap(), 18899);
        assert_eq!(ports.len(), 104);
        assert!(!ports.contains(&18792));
        assert_eq!(reserved_ports(0), Err(Error::Zero));
        assert_eq!(
            reserved_ports(65500),
            Err(Error::TooHigh(65500, PortPlan::Full))
        );
        assert!(reserved_ports(65535 - 110).is_ok());
    }

    #[test]
    fn port_precedence() {
        let env = |v: &[(&str, &str)]| EnvSnapshot::from_pairs(v.iter().copied());
        let cases: &[Row] = &[
            (None, &[], None, Ok(18789)),
            (None, &[], Some(20000), Ok(20000)),
            (
                None,
                &[("OPENCLAW_GATEWAY_PORT", "21000")],
                Some(20000),
                Ok(21000),
            ),
            (
                Some(22000),
                &[("OPENCLAW_GATEWAY_PORT", "21000")],
                Some(20000),
                Ok(22000),
            ),
            (
                None,
                &[("OPENCLAW_GATEWAY_PORT", " ")],
                Some(20000),
                Ok(20000),
            ),
            (
                None,
                &[("OPENCLAW_GATEWAY_PORT", "x")],
                None,
                Err(Error::BadEnvPort("x".into())),
            ),
            (
                None,
                &[("OPENCLAW_GATEWAY_PORT", "0")],
                None,
                Err(Error::BadEnvPort("0".into())),
            ),
        ];
        for (flag, vars, config, want) in cases {
            assert_eq!(
                &resolve_gateway_port(*flag, &env(vars), *config),
                want,
                "{flag:?} {vars:?} {config:?}"
            );
        }
    }

    #[test]
    fn overlap_rules() {
        assert!(overlaps(18789, 18789));
        assert!(overlaps(18789, 18789 + 110)); // CDP end meets the next base
        assert!(!overlaps(18789, 18789 + 111));
        assert!(overlaps(18789, 18789 + 20)); // OpenClaw's 20-port guidance overlaps CDP
        // 18792's set holds 18793 = 18789 + 4
        assert!(overlaps(18789, 18792));
    }

    #[test]
    fn allocation_skips_claims_and_busy_ports() {
        let all_free = |_: u16| true;
        assert_eq!(
            allocate_base(18789, PortPlan::Full, &[], None, &all_free),
            Ok(18789)
        );
        let claims = [claim("a", 18789)];
        assert_eq!(
            allocate_base(18789, PortPlan::Full, &claims, None, &all_free),
            Ok(18900)
        );
        let busy = |p: u16| p != 18904;
        assert_eq!(
            allocate_base(18789, PortPlan::Full, &claims, None, &busy),
            Ok(19011)
        );
        assert_eq!(
            allocate_base(65400, PortPlan::Full, &[], None, &|_| false),
            Err(Error::Exhausted(65400))
        );
    }

    #[test]
    fn allocation_stays_out_of_the_ephemeral_range() {
        let all_free = |_: u16| true;
        // 32700..=32810 would straddle 32768: the first base above 60999 wins.
        assert_eq!(
            allocate_base(32700, PortPlan::Full, &[], Some((32768, 60999)), &all_free),
            Ok(32700 + 111 * 255)
        );
        assert_eq!(
            allocate_base(18789, PortPlan::Full, &[], Some((32768, 60999)), &all_free),
            Ok(18789)
        );
        let dev = crate::ProfileName::parse("dev").unwrap();
        assert_eq!(implied_port(&dev), Some(19001));
        assert_eq!(implied_port(&crate::ProfileName::parse("a").unwrap()), None);
    }

    #[test]
    fn explicit_base_errors_name_the_collision() {
        let claims = [claim("work", 18789)];
        let err = check_base_available(18800, PortPlan::Full, &claims, &|_| true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "port 18800 overlaps profile `work` (base 18789, ports 18789..=18899); choose a base outside that range"
        );
        let err = check_base_available(30000, PortPlan::Full, &[], &|p| p != 30004).unwrap_err();
        assert_eq!(
            err,
            Error::Busy {
                base: 30000,
                port: 30004
            }
        );
    }

    #[test]
    fn a_listening_port_is_not_free() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!is_port_free(port));
        drop(l);
        assert!(is_port_free(port));
    }

    proptest! {
        #[test]
        fn allocated_bases_never_overlap(start in 1024u16..60000, n in 1usize..8) {
            let mut claims: Vec<Claim> = Vec::new();
            for i in 0..n {
                match allocate_base(start, PortPlan::Full, &claims, None, &|_| true) {
                    Ok(b) => claims.push(claim(&format!("p{i}"), b)),
                    Err(_) => break,
                }
            }
            for (i, a) in claims.iter().enumerate() {
                for b in &claims[i + 1..] {
                    prop_assert!(!overlaps(a.base, b.base));
                }
            }
        }
    }
}
