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

/// Errors in the port plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `OPENCLAW_GATEWAY_PORT` is not a port number.
    #[error("invalid OPENCLAW_GATEWAY_PORT {0:?}: expected a number from 1 to 65535")]
    BadEnvPort(String),
    /// The base leaves no room for the derived ports.
    #[error("port {0} is too high: a profile reserves {0}..={max}; choose a base of at most {limit}", max = u32::from(*.0) + u32::from(RESERVED_SPAN), limit = u16::MAX - RESERVED_SPAN)]
    TooHigh(u16),
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
    check_base(base)?;
    let mut ports = vec![base, base + 1, base + 2, base + 4];
    ports.extend((11..=RESERVED_SPAN).map(|o| base + o));
    Ok(ports)
}

fn check_base(base: u16) -> Result<(), Error> {
    if base == 0 {
        return Err(Error::Zero);
    }
    if base > u16::MAX - RESERVED_SPAN {
        return Err(Error::TooHigh(base));
    }
    Ok(())
}

/// True if the reserved sets of bases `a` and `b` share a port.
pub fn overlaps(a: u16, b: u16) -> bool {
    let (Ok(pa), Ok(pb)) = (reserved_ports(a), reserved_ports(b)) else {
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
}

/// Checks that `base`'s reserved set overlaps no claim and that every
/// reserved port passes `is_free`.
pub fn check_base_available(
    base: u16,
    claims: &[Claim],
    is_free: &dyn Fn(u16) -> bool,
) -> Result<(), Error> {
    let ports = reserved_ports(base)?;
    if let Some(c) = claims.iter().find(|c| overlaps(base, c.base)) {
        return Err(Error::Overlaps {
            base,
            profile: c.profile.clone(),
            other_base: c.base,
            other_end: u32::from(c.base) + u32::from(RESERVED_SPAN),
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

/// Finds the first base at `start + k * ALLOCATION_STEP` whose reserved set
/// overlaps no claim, stays out of `avoid` (the ephemeral range), and is
/// free now.
pub fn allocate_base(
    start: u16,
    claims: &[Claim],
    avoid: Option<(u16, u16)>,
    is_free: &dyn Fn(u16) -> bool,
) -> Result<u16, Error> {
    check_base(start)?;
    let mut base = start;
    loop {
        let end = u32::from(base) + u32::from(RESERVED_SPAN);
        let in_avoided = avoid.is_some_and(|(lo, hi)| u32::from(lo) <= end && base <= hi);
        if !in_avoided && check_base_available(base, claims, is_free).is_ok() {
            return Ok(base);
        }
        match base.checked_add(ALLOCATION_STEP) {
            Some(next) if next <= u16::MAX - RESERVED_SPAN => base = next,
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
        }
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
        assert_eq!(reserved_ports(65500), Err(Error::TooHigh(65500)));
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
        assert_eq!(allocate_base(18789, &[], None, &all_free), Ok(18789));
        let claims = [claim("a", 18789)];
        assert_eq!(allocate_base(18789, &claims, None, &all_free), Ok(18900));
        let busy = |p: u16| p != 18904;
        assert_eq!(allocate_base(18789, &claims, None, &busy), Ok(19011));
        assert_eq!(
            allocate_base(65400, &[], None, &|_| false),
            Err(Error::Exhausted(65400))
        );
    }

    #[test]
    fn allocation_stays_out_of_the_ephemeral_range() {
        let all_free = |_: u16| true;
        // 32700..=32810 would straddle 32768: the first base above 60999 wins.
        assert_eq!(
            allocate_base(32700, &[], Some((32768, 60999)), &all_free),
            Ok(32700 + 111 * 255)
        );
        assert_eq!(
            allocate_base(18789, &[], Some((32768, 60999)), &all_free),
            Ok(18789)
        );
        let dev = crate::ProfileName::parse("dev").unwrap();
        assert_eq!(implied_port(&dev), Some(19001));
        assert_eq!(implied_port(&crate::ProfileName::parse("a").unwrap()), None);
    }

    #[test]
    fn explicit_base_errors_name_the_collision() {
        let claims = [claim("work", 18789)];
        let err = check_base_available(18800, &claims, &|_| true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "port 18800 overlaps profile `work` (base 18789, ports 18789..=18899); choose a base outside that range"
        );
        let err = check_base_available(30000, &[], &|p| p != 30004).unwrap_err();
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
                match allocate_base(start, &claims, None, &|_| true) {
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
