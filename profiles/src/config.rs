//! `openclaw.json`: OpenClaw's config file, read leniently as JSON5 into a
//! typed view of the keys we use; edited in place for the keys we own, with
//! comments, formatting and unknown keys preserved.

use std::fmt;
use std::path::{Path, PathBuf};

use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::Value;

use crate::atomic::write_atomic;

/// A secret string (token, password). Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The secret itself: use only to compare or to hand to a child.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Parses a secret from a command-line value (clap's `value_parser`).
impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(s))
    }
}

/// Reads a secret from a JSON string (`connect.params.auth`).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// `gateway.auth.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No shared secret (private ingress only).
    None,
    /// `gateway.auth.token`.
    Token,
    /// `gateway.auth.password`.
    Password,
    /// Identity headers from a trusted proxy.
    TrustedProxy,
}

impl AuthMode {
    /// Parses the config/CLI spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "token" => Self::Token,
            "password" => Self::Password,
            "trusted-proxy" => Self::TrustedProxy,
            _ => return None,
        })
    }
    /// The config/CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Token => "token",
            Self::Password => "password",
            Self::TrustedProxy => "trusted-proxy",
        }
    }
}

/// `gateway.bind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// 127.0.0.1 (default).
    Loopback,
    /// 0.0.0.0.
    Lan,
    /// The Tailscale address, else loopback.
    Tailnet,
    /// Loopback, or 0.0.0.0 in containers.
    Auto,
    /// `gateway.customBindHost`.
    Custom,
}

impl BindMode {
    /// Parses the config/CLI spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "loopback" => Self::Loopback,
            "lan" => Self::Lan,
            "tailnet" => Self::Tailnet,
            "auto" => Self::Auto,
            "custom" => Self::Custom,
            _ => return None,
        })
    }
    /// The config/CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Lan => "lan",
            Self::Tailnet => "tailnet",
            Self::Auto => "auto",
            Self::Custom => "custom",
        }
    }
}

/// `gateway.auth.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayAuth {
    /// `gateway.auth.mode`.
    pub mode: Option<AuthMode>,
    /// `gateway.auth.token`.
    pub token: Option<Secret>,
    /// `gateway.auth.password`.
    pub password: Option<Secret>,
}

/// `gateway.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewaySection {
    /// `gateway.port`.
    pub port: Option<u16>,
    /// `gateway.bind`.
    pub bind: Option<BindMode>,
    /// `gateway.customBindHost`.
    pub custom_bind_host: Option<String>,
    /// `gateway.auth`.
    pub auth: GatewayAuth,
    /// `gateway.trustedProxies`: addresses or CIDR blocks of reverse proxies
    /// whose forwarding headers the gateway believes.
    pub trusted_proxies: Vec<String>,
}

/// A chat channel's section (`channels.telegram`, `channels.discord`): the
/// keys every channel shares, plus the raw object for the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelSection {
    /// `enabled` (absent means enabled when configured).
    pub enabled: Option<bool>,
    /// `botToken` (Telegram) or `token` (Discord).
    pub token: Option<Secret>,
    /// `dmPolicy`.
    pub dm_policy: Option<String>,
    /// `allowFrom`.
    pub allow_from: Vec<String>,
    /// The whole section as written.
    pub raw: Value,
}

/// `agents.defaults.*`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentDefaults {
    /// `agents.defaults.workspace`.
    pub workspace: Option<PathBuf>,
    /// `agents.defaults.model` (a string or `{primary, fallbacks}`).
    pub model: Option<Value>,
    /// The whole section as written.
    pub raw: Value,
}

/// True for config keys whose string values are secrets (tokens,
/// passwords, API keys): `config.get` redacts them, exports keep them out
/// of anything but a secret store.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_lowercase();
    ["token", "password", "secret", "apikey", "api_key"]
        .iter()
        .any(|s| k.contains(s))
}

/// The typed view of `openclaw.json`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenClawConfig {
    /// `gateway`.
    pub gateway: GatewaySection,
    /// `channels.telegram`.
    pub telegram: Option<ChannelSection>,
    /// `channels.discord`.
    pub discord: Option<ChannelSection>,
    /// `agents.defaults`.
    pub agent_defaults: AgentDefaults,
    /// The whole document.
    pub raw: Value,
}

/// Errors reading or editing `openclaw.json`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("cannot {action} config {}: {source}", .path.display())]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not JSON5.
    #[error("invalid JSON5 in {}:{line}:{column}: {message}; fix the file or move it aside", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A key we use holds the wrong kind of value.
    #[error("invalid config {}: `{key}` must be {expected}", .path.display())]
    Type {
        /// The file.
        path: PathBuf,
        /// Dotted key path.
        key: String,
        /// What it must be.
        expected: &'static str,
    },
    /// The path is not a regular file.
    #[error("config {} is not a regular file; OpenClaw needs a file there", .path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
}

/// Reads `path`. A missing file is an empty config (`Ok(None)`).
pub fn load_config(path: &Path) -> Result<Option<OpenClawConfig>, Error> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                action: "read",
                path: path.into(),
                source,
            });
        }
        Ok(m) if !m.is_file() => return Err(Error::NotAFile { path: path.into() }),
        Ok(_) => {}
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        action: "read",
        path: path.into(),
        source,
    })?;
    parse_config(&text, path).map(Some)
}

/// The deepest nesting of objects and arrays a config may have. Parsers,
/// editors and printers recurse once per level: a file nested thousands
/// deep would overflow the stack of every program that reads it.
pub const MAX_NESTING: usize = 64;

/// Finds the first place where `text` (JSON5) nests objects and arrays
/// deeper than `max`, skipping strings and comments; `(line, column)`,
/// 1-based.
pub fn too_deep(text: &str, max: usize) -> Option<(usize, usize)> {
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    let (mut line_comment, mut block_comment) = (false, false);
    while let Some(c) = chars.next() {
        col += 1;
        if c == '\n' {
            line += 1;
            col = 0;
            line_comment = false;
            continue;
        }
        if line_comment {
            continue;
        }
        if block_comment {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                col += 1;
                block_comment = false;
            }
            continue;
        }
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
                col += 1;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '/' if chars.peek() == Some(&'/') => line_comment = true,
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                col += 1;
                block_comment = true;
            }
            '{' | '[' => {
                depth += 1;
                if depth > max {
                    return Some((line, col));
                }
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Parses config text; `path` only names the file in errors.
pub fn parse_config(text: &str, path: &Path) -> Result<OpenClawConfig, Error> {
    if let Some((line, column)) = too_deep(text, MAX_NESTING) {
        return Err(Error::Parse {
            path: path.into(),
            line,
            column,
            message: format!("nested deeper than {MAX_NESTING} levels"),
        });
    }
    let raw: Value = if text.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        json5::from_str(text).map_err(|e| {
            let (line, column) = e.position().map_or((1, 1), |p| (p.line + 1, p.column + 1));
            let message = e.code().map_or_else(|| e.to_string(), |c| c.to_string());
            Error::Parse {
                path: path.into(),
                line,
                column,
                message,
            }
        })?
    };
    let v = View { path, root: &raw };
    if !raw.is_object() {
        return Err(v.type_err("(top level)", "an object"));
    }
    let gateway = GatewaySection {
        port: v.port("gateway.port")?,
        bind: v.enum_str(
            "gateway.bind",
            BindMode::parse,
            "one of loopback, lan, tailnet, auto, custom",
        )?,
        custom_bind_host: v.string("gateway.customBindHost")?,
        trusted_proxies: v.strings("gateway.trustedProxies")?,
        auth: GatewayAuth {
            mode: v.enum_str(
                "gateway.auth.mode",
                AuthMode::parse,
                "one of none, token, password, trusted-proxy",
            )?,
            token: v.string("gateway.auth.token")?.map(Secret),
            password: v.string("gateway.auth.password")?.map(Secret),
        },
    };
    let telegram = v.channel("channels.telegram", "botToken")?;
    let discord = v.channel("channels.discord", "token")?;
    let agent_defaults = AgentDefaults {
        workspace: v.string("agents.defaults.workspace")?.map(PathBuf::from),
        model: v.get("agents.defaults.model").cloned(),
        raw: v.get("agents.defaults").cloned().unwrap_or(Value::Null),
    };
    Ok(OpenClawConfig {
        gateway,
        telegram,
        discord,
        agent_defaults,
        raw: raw.clone(),
    })
}

struct View<'a> {
    path: &'a Path,
    root: &'a Value,
}

impl View<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        key.split('.')
            .try_fold(self.root, |v, k| v.get(k))
            .filter(|v| !v.is_null())
    }
    fn type_err(&self, key: &str, expected: &'static str) -> Error {
        Error::Type {
            path: self.path.into(),
            key: key.into(),
            expected,
        }
    }
    fn string(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.type_err(key, "a string")),
        }
    }
    fn strings(&self, key: &str) -> Result<Vec<String>, Error> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.type_err(key, "a list of strings")),
            Some(_) => Err(self.type_err(key, "a list of strings")),
        }
    }
    fn bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.type_err(key, "true or false")),
        }
    }
    fn port(&self, key: &str) -> Result<Option<u16>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&n| n > 0)
                .map(Some)
                .ok_or_else(|| self.type_err(key, "a port number from 1 to 65535")),
        }
    }
    fn enum_str<T>(
        &self,
        key: &str,
        parse: fn(&str) -> Option<T>,
        expected: &'static str,
    ) -> Result<Option<T>, Error> {
        match self.string(key) {
            Ok(None) => Ok(None),
            Ok(Some(s)) => parse(&s)
                .map(Some)
                .ok_or_else(|| self.type_err(key, expected)),
            Err(_) => Err(self.type_err(key, expected)),
        }
    }
    fn channel(&self, key: &str, token_key: &str) -> Result<Option<ChannelSection>, Error> {
        let Some(raw) = self.get(key) else {
            return Ok(None);
        };
        if !raw.is_object() {
            return Err(self.type_err(key, "an object"));
        }
        let allow_from = match self.get(&format!("{key}.allowFrom")) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.type_err(&format!("{key}.allowFrom"), "a list of ids"))?,
            Some(_) => return Err(self.type_err(&format!("{key}.allowFrom"), "a list of ids")),
        };
        Ok(Some(ChannelSection {
            enabled: self.bool(&format!("{key}.enabled"))?,
            token: self.string(&format!("{key}.{token_key}"))?.map(Secret),
            dm_policy: self.string(&format!("{key}.dmPolicy"))?,
            allow_from,
            raw: raw.clone(),
        }))
    }
}

/// The keys `openclawctl` owns in `openclaw.json`. `None` leaves a key as
/// it is.
#[derive(Debug, Clone, Default)]
pub struct OwnedKeys {
    /// `gateway.port`.
    pub port: Option<u16>,
    /// `gateway.mode` (`local` for a gateway this host runs).
    pub gateway_mode: Option<&'static str>,
    /// `gateway.bind`.
    pub bind: Option<BindMode>,
    /// `gateway.auth.mode`.
    pub auth_mode: Option<AuthMode>,
    /// `gateway.auth.token`.
    pub token: Option<Secret>,
}

/// Writes `keys` into the config at `path` (created if missing), keeping
/// every other key, comment and formatting. Written atomically with 0600
/// since it may hold the gateway token.
pub fn write_owned_keys(path: &Path, keys: &OwnedKeys) -> Result<(), Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "{}\n".to_string(),
        Err(source) => {
            return Err(Error::Io {
                action: "read",
                path: path.into(),
                source,
            });
        }
    };
    // Validate with the same parser the readers use before editing.
    parse_config(&text, path)?;
    let text = if text.trim().is_empty() {
        "{}\n".to_string()
    } else {
        text
    };
    let root = CstRootNode::parse(&text, &jsonc_parser::ParseOptions::default()).map_err(|e| {
        Error::Parse {
            path: path.into(),
            line: 1,
            column: 1,
            message: e.to_string(),
        }
    })?;
    let obj = root.object_value_or_set();
    let gateway = obj.object_value_or_set("gateway");
    if let Some(port) = keys.port {
        set_prop(&gateway, "port", CstInputValue::Number(port.to_string()));
    }
    if let Some(mode) = keys.gateway_mode {
        set_prop(&gateway, "mode", CstInputValue::String(mode.to_string()));
    }
    if let Some(bind) = keys.bind {
        set_prop(
            &gateway,
            "bind",
            CstInputValue::String(bind.as_str().to_string()),
        );
    }
    if keys.auth_mode.is_some() || keys.token.is_some() {
        let auth = gateway.object_value_or_set("auth");
        if let Some(mode) = keys.auth_mode {
            set_prop(
                &auth,
                "mode",
                CstInputValue::String(mode.as_str().to_string()),
            );
        }
        if let Some(token) = &keys.token {
            set_prop(
                &auth,
                "token",
                CstInputValue::String(token.expose().to_string()),
            );
        }
    }
    let mut out = root.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    write_atomic(path, out.as_bytes(), 0o600).map_err(|source| Error::Io {
        action: "write",
        path: path.into(),
        source,
    })
}

fn set_prop(obj: &CstObject, name: &str, value: CstInputValue) {
    match obj.get(name) {
        Some(prop) => prop.set_value(value),
        None => {
            obj.append(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<OpenClawConfig, Error> {
        parse_config(text, Path::new("/x/openclaw.json"))
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{{a: {}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse_config(&deep, Path::new("/c.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/c.json:1:") && err.contains("nested deeper than 64"),
            "{err}"
        );
        // Brackets in strings and comments do not count.
        let fine = format!(
            "// {}\n{{ a: '{}', /* {} */ gateway: {{ port: 1 }} }}",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert!(too_deep(&fine, MAX_NESTING).is_none());
        assert!(parse_config(&fine, Path::new("/c.json")).is_ok());
    }

    #[test]
    fn reads_json5_with_unknown_keys() {
        let c = parse(
            r#"// comment
            {
              gateway: { port: 19000, bind: 'lan', auth: { mode: "token", token: "s3cret", }, somethingNew: [1,2] },
              channels: { telegram: { botToken: "123:abc", dmPolicy: "pairing", allowFrom: ["1", 2] } },
              agents: { defaults: { workspace: "/w", model: { primary: "openai/gpt" } } },
              plugins: { whatever: true },
            }"#,
        )
        .unwrap();
        assert_eq!(c.gateway.port, Some(19000));
        assert_eq!(c.gateway.bind, Some(BindMode::Lan));
        assert_eq!(c.gateway.auth.mode, Some(AuthMode::Token));
        assert_eq!(c.gateway.auth.token.as_ref().unwrap().expose(), "s3cret");
        let tg = c.telegram.unwrap();
        assert_eq!(tg.token.unwrap().expose(), "123:abc");
        assert_eq!(tg.allow_from, vec!["1", "2"]);
        assert!(c.discord.is_none());
        assert_eq!(c.agent_defaults.workspace, Some(PathBuf::from("/w")));
        assert_eq!(c.raw["plugins"]["whatever"], Value::Bool(true));
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = parse(r#"{gateway:{auth:{token:"s3cret-value"}}}"#).unwrap();
        assert!(!format!("{:?}", c.gateway).contains("s3cret-value"));
    }

    #[test]
    fn parse_errors_carry_file_line_and_column() {
        let err = parse("{\n  gateway: {\n    port: 12,,\n  }\n}").unwrap_err();
        match &err {
            Error::Parse { line, column, .. } => {
                assert_eq!(*line, 3);
                assert!(*column > 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with("invalid JSON5 in /x/openclaw.json:3:"),
            "{err}"
        );
    }

    #[test]
    fn type_errors_name_the_key() {
        let cases = [
            (
                r#"{gateway:{port:"x"}}"#,
                "`gateway.port` must be a port number",
            ),
            (
                r#"{gateway:{port:70000}}"#,
                "`gateway.port` must be a port number",
            ),
            (
                r#"{gateway:{bind:"moon"}}"#,
                "`gateway.bind` must be one of",
            ),
            (
                r#"{gateway:{auth:{mode:"magic"}}}"#,
                "`gateway.auth.mode` must be one of",
            ),
            (
                r#"{gateway:{auth:{token:5}}}"#,
                "`gateway.auth.token` must be a string",
            ),
            (
                r#"{channels:{telegram:[]}}"#,
                "`channels.telegram` must be an object",
            ),
            (r#"[1]"#, "`(top level)` must be an object"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn empty_or_missing_file_is_empty_config() {
        assert_eq!(parse("  \n").unwrap().gateway, GatewaySection::default());
        let dir = tempfile::tempdir().unwrap();
        assert!(
            load_config(&dir.path().join("none.json"))
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            load_config(dir.path()),
            Err(Error::NotAFile { .. })
        ));
    }

    #[test]
    fn writing_owned_keys_preserves_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openclaw.json");
        let original = "// my notes\n{\n  gateway: {\n    port: 1, // old port\n  },\n  custom: 'keep me',\n}\n";
        std::fs::write(&path, original).unwrap();
        write_owned_keys(
            &path,
            &OwnedKeys {
                port: Some(19000),
                gateway_mode: Some("local"),
                auth_mode: Some(AuthMode::Token),
                token: Some(Secret::new("abc")),
                ..Default::default()
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("// my notes"), "{text}");
        assert!(text.contains("// old port"), "{text}");
        assert!(text.contains("custom: 'keep me'"), "{text}");
        let c = load_config(&path).unwrap().unwrap();
        assert_eq!(c.gateway.port, Some(19000));
        assert_eq!(c.gateway.auth.mode, Some(AuthMode::Token));
        assert_eq!(c.gateway.auth.token.unwrap().expose(), "abc");
        assert_eq!(c.raw["gateway"]["mode"], "local");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn writing_creates_a_missing_file_and_refuses_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openclaw.json");
        write_owned_keys(
            &path,
            &OwnedKeys {
                port: Some(20000),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            load_config(&path).unwrap().unwrap().gateway.port,
            Some(20000)
        );
        std::fs::write(&path, "{ broken").unwrap();
        assert!(matches!(
            write_owned_keys(
                &path,
                &OwnedKeys {
                    port: Some(1),
                    ..Default::default()
                }
            ),
            Err(Error::Parse { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ broken");
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,64}") {
            let _ = parse(&s);
        }

        #[test]
        fn owned_port_round_trips(port in 1u16..=65535) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("openclaw.json");
            std::fs::write(&path, "{ /* c */ a: 1 }").unwrap();
            write_owned_keys(&path, &OwnedKeys { port: Some(port), ..Default::default() }).unwrap();
            let c = load_config(&path).unwrap().unwrap();
            prop_assert_eq!(c.gateway.port, Some(port));
            prop_assert_eq!(c.raw["a"].as_i64(), Some(1));
        }
    }
}
