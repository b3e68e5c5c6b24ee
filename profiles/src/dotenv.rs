//! `.env` files: `KEY=value` lines, as OpenClaw reads `$OPENCLAW_STATE_DIR/.env`.

/// Parses the `KEY=value` lines of a `.env` file (comments, blanks and
/// `export ` prefixes allowed; surrounding quotes removed).
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            // A shell variable name: what every manager (a launchd wrapper
            // script included) can pass on.
            if k.is_empty()
                || k.starts_with(|c: char| c.is_ascii_digit())
                || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return None;
            }
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Adds the variables of the profile's `<stateDir>/.env` that `env` does
/// not set already (OpenClaw's precedence: process env > state-dir `.env` >
/// config). The gateway applies this itself at start, and so do its
/// operator commands, so the gateway sees the same environment whichever
/// manager runs it (keeper, systemd, launchd, a shell) and the commands
/// agree with it about credentials. Returns the keys it added (never the
/// values: they may be secrets).
pub fn apply_state_dotenv(env: &mut crate::paths::EnvSnapshot) -> Vec<String> {
    let Ok(paths) = crate::paths::resolve_paths(env) else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string(paths.state_dir.join(".env")) else {
        return Vec::new();
    };
    let mut added = Vec::new();
    for (k, v) in parse_dotenv(&text) {
        if env.get(&k).is_none() {
            env.set(&k, v);
            added.push(k);
        }
    }
    added
}

#[cfg(test)]
mod tests {
    #[test]
    fn state_dotenv_fills_only_unset_vars() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s");
        std::fs::create_dir(&state).unwrap();
        std::fs::write(
            state.join(".env"),
            "OPENCLAW_GATEWAY_TOKEN=fromfile\nA=file\n",
        )
        .unwrap();
        let mut env = crate::paths::EnvSnapshot::from_pairs([
            ("HOME", dir.path().to_str().unwrap()),
            ("OPENCLAW_STATE_DIR", state.to_str().unwrap()),
            ("A", "process"),
        ]);
        assert_eq!(
            super::apply_state_dotenv(&mut env),
            vec!["OPENCLAW_GATEWAY_TOKEN"]
        );
        assert_eq!(env.get("OPENCLAW_GATEWAY_TOKEN"), Some("fromfile"));
        assert_eq!(env.get("A"), Some("process"));
    }

    #[test]
    fn parses_lines() {
        let parsed =
            super::parse_dotenv("# c\nexport A=1\nB=\"two words\"\nbad line\n C = 3 \n1X=no\n");
        let want: Vec<(String, String)> = vec![
            ("A".into(), "1".into()),
            ("B".into(), "two words".into()),
            ("C".into(), "3".into()),
        ];
        assert_eq!(parsed, want);
    }
}
