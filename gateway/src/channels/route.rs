//! Who may talk to the bot in a DM, and which session a message lands in
//! (`channels.md` §2.1 and §4): `dmPolicy` with `allowFrom` as OpenClaw
//! normalizes it, and the session keys for DMs (`session.dmScope`) and
//! groups.

/// A chat channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Telegram.
    Telegram,
    /// Discord.
    Discord,
}

impl Channel {
    /// `telegram` / `discord`.
    pub fn id(self) -> &'static str {
        match self {
            Channel::Telegram => "telegram",
            Channel::Discord => "discord",
        }
    }
}

/// `dmPolicy` (default `pairing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DmPolicy {
    /// Unknown senders get a pairing code; their message is not processed.
    #[default]
    Pairing,
    /// Only `allowFrom` (and the approved store).
    Allowlist,
    /// Anyone, when `allowFrom` holds `"*"`; else only the listed ids.
    Open,
    /// DMs are dropped.
    Disabled,
}

impl DmPolicy {
    /// From the config value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pairing" => Self::Pairing,
            "allowlist" => Self::Allowlist,
            "open" => Self::Open,
            "disabled" => Self::Disabled,
            _ => return None,
        })
    }
}

/// What happens to a DM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmVerdict {
    /// Hand it to the agent.
    Accept,
    /// Start (or remind of) a pairing request; do not process it.
    Pair,
    /// Drop it silently.
    Drop,
}

/// One `allowFrom` entry as the channel compares it: Telegram strips
/// `telegram:`/`tg:` (any case) and keeps numeric ids only (`@username`
/// never matches at runtime); Discord strips `discord:` and keeps ids
/// (names only with `dangerouslyAllowNameMatching`, not supported here).
/// `*` stays `*`; anything else is `None`.
pub fn normalize_allow_entry(channel: Channel, entry: &str) -> Option<String> {
    let e = entry.trim();
    if e == "*" {
        return Some("*".into());
    }
    let strip = |prefixes: &[&str]| -> String {
        for p in prefixes {
            if e.len() > p.len() && e[..p.len()].eq_ignore_ascii_case(p) {
                return e[p.len()..].to_string();
            }
        }
        e.to_string()
    };
    let id = match channel {
        Channel::Telegram => strip(&["telegram:", "tg:"]),
        Channel::Discord => strip(&["discord:"]),
    };
    let numeric = !id.is_empty() && id.chars().all(|c| c.is_ascii_digit());
    numeric.then_some(id)
}

/// The DM gate: `sender` (a numeric id) against the policy, the
/// normalized `allow_from` of the config, and the senders approved by
/// pairing for this channel and account. Under `open`, `allowFrom` must
/// hold `*` for strangers to pass; approvals never widen `open`.
pub fn dm_verdict(
    policy: DmPolicy,
    allow_from: &[String],
    approved: &[String],
    sender: &str,
) -> DmVerdict {
    let listed = allow_from.iter().any(|a| a == sender);
    match policy {
        DmPolicy::Disabled => DmVerdict::Drop,
        DmPolicy::Open if listed || allow_from.iter().any(|a| a == "*") => DmVerdict::Accept,
        DmPolicy::Open => DmVerdict::Drop,
        DmPolicy::Allowlist if listed || approved.iter().any(|a| a == sender) => DmVerdict::Accept,
        DmPolicy::Allowlist => DmVerdict::Drop,
        DmPolicy::Pairing if listed || approved.iter().any(|a| a == sender) => DmVerdict::Accept,
        DmPolicy::Pairing => DmVerdict::Pair,
    }
}

/// `session.dmScope` (default `main`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DmScope {
    /// Every DM of every channel shares `agent:<agent>:<mainKey>`.
    #[default]
    Main,
    /// `agent:<agent>:direct:<peer>`.
    PerPeer,
    /// `agent:<agent>:<channel>:direct:<peer>`.
    PerChannelPeer,
    /// `agent:<agent>:<channel>:<account>:direct:<peer>`.
    PerAccountChannelPeer,
}

impl DmScope {
    /// From the config value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "main" => Self::Main,
            "per-peer" => Self::PerPeer,
            "per-channel-peer" => Self::PerChannelPeer,
            "per-account-channel-peer" => Self::PerAccountChannelPeer,
            _ => return None,
        })
    }
}

/// The session key of a DM (agent id and peer id lowercased).
pub fn dm_session_key(
    scope: DmScope,
    agent: &str,
    main_key: &str,
    channel: Channel,
    account: &str,
    peer: &str,
) -> String {
    let agent = agent.to_lowercase();
    let peer = peer.to_lowercase();
    match scope {
        DmScope::Main => format!("agent:{agent}:{main_key}"),
        DmScope::PerPeer => format!("agent:{agent}:direct:{peer}"),
        DmScope::PerChannelPeer => format!("agent:{agent}:{}:direct:{peer}", channel.id()),
        DmScope::PerAccountChannelPeer => {
            format!("agent:{agent}:{}:{account}:direct:{peer}", channel.id())
        }
    }
}

/// The session key of a group message (`session.groupScope: per-group`):
/// a Telegram group (and forum topic), a Discord guild channel (and thread).
pub fn group_session_key(
    agent: &str,
    channel: Channel,
    chat: &str,
    thread: Option<&str>,
) -> String {
    let agent = agent.to_lowercase();
    match (channel, thread) {
        (Channel::Telegram, None) => format!("agent:{agent}:telegram:group:{chat}"),
        (Channel::Telegram, Some(t)) => format!("agent:{agent}:telegram:group:{chat}:topic:{t}"),
        (Channel::Discord, None) => format!("agent:{agent}:discord:channel:{chat}"),
        (Channel::Discord, Some(t)) => format!("agent:{agent}:discord:channel:{chat}:thread:{t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_entries_normalize_as_openclaw_does() {
        use Channel::*;
        assert_eq!(
            normalize_allow_entry(Telegram, "TG:123").as_deref(),
            Some("123")
        );
        assert_eq!(
            normalize_allow_entry(Telegram, "telegram:42").as_deref(),
            Some("42")
        );
        assert_eq!(normalize_allow_entry(Telegram, " 7 ").as_deref(), Some("7"));
        assert_eq!(normalize_allow_entry(Telegram, "@someone"), None);
        assert_eq!(normalize_allow_entry(Telegram, "*").as_deref(), Some("*"));
        assert_eq!(
            normalize_allow_entry(Discord, "discord:9876").as_deref(),
            Some("9876")
        );
        assert_eq!(normalize_allow_entry(Discord, "someone#1234"), None);
    }

    #[test]
    fn the_dm_gate_follows_each_policy() {
        use DmVerdict::*;
        let allow = vec!["1".to_string()];
        let approved = vec!["2".to_string()];
        let star = vec!["*".to_string()];
        let v = |p, a: &[String], s| dm_verdict(p, a, &approved, s);
        assert_eq!(v(DmPolicy::Pairing, &allow, "1"), Accept);
        assert_eq!(v(DmPolicy::Pairing, &allow, "2"), Accept);
        assert_eq!(v(DmPolicy::Pairing, &allow, "3"), Pair);
        assert_eq!(v(DmPolicy::Allowlist, &allow, "2"), Accept);
        assert_eq!(v(DmPolicy::Allowlist, &allow, "3"), Drop);
        // `open` needs "*": concrete ids only admit those ids, and an
        // approval does not widen it.
        assert_eq!(v(DmPolicy::Open, &star, "3"), Accept);
        assert_eq!(v(DmPolicy::Open, &allow, "1"), Accept);
        assert_eq!(v(DmPolicy::Open, &allow, "2"), Drop);
        assert_eq!(v(DmPolicy::Disabled, &star, "1"), Drop);
        assert_eq!(DmPolicy::default(), DmPolicy::Pairing);
        assert_eq!(DmPolicy::parse("allowlist"), Some(DmPolicy::Allowlist));
        assert_eq!(DmPolicy::parse("everyone"), None);
    }

    #[test]
    fn session_keys_are_exactly_openclaws() {
        use Channel::*;
        let k = |s| dm_session_key(s, "Main", "main", Telegram, "default", "123");
        assert_eq!(k(DmScope::Main), "agent:main:main");
        assert_eq!(k(DmScope::PerPeer), "agent:main:direct:123");
        assert_eq!(k(DmScope::PerChannelPeer), "agent:main:telegram:direct:123");
        assert_eq!(
            k(DmScope::PerAccountChannelPeer),
            "agent:main:telegram:default:direct:123"
        );
        assert_eq!(
            DmScope::parse("per-channel-peer"),
            Some(DmScope::PerChannelPeer)
        );
        assert_eq!(
            group_session_key("main", Telegram, "-100123", Some("42")),
            "agent:main:telegram:group:-100123:topic:42"
        );
        assert_eq!(
            group_session_key("main", Telegram, "-100123", None),
            "agent:main:telegram:group:-100123"
        );
        assert_eq!(
            group_session_key("main", Discord, "555", Some("777")),
            "agent:main:discord:channel:555:thread:777"
        );
    }
}
