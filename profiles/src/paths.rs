//! Where a profile's files are, resolved exactly as OpenClaw resolves them
//! (supervisor spec §1.2–1.3).
//!
//! All functions take an [`EnvSnapshot`] instead of reading the process
//! environment, so every rule is testable in a table and a child's
//! environment can be computed before it is spawned.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::contract::{
    CONFIG_FILE_NAME, ENV_CONFIG_PATH, ENV_GATEWAY_PORT, ENV_HOME, ENV_PROFILE, ENV_STATE_DIR,
};
use crate::name::ProfileName;

/// Errors resolving paths.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither `OPENCLAW_HOME` nor `HOME` is set.
    #[error("cannot find the home directory: set HOME (or OPENCLAW_HOME)")]
    NoHome,
    /// `OPENCLAW_PROFILE` holds an invalid name.
    #[error("invalid OPENCLAW_PROFILE: {0}")]
    BadProfileEnv(#[source] crate::name::NameError),
}

/// A copy of the environment variables that path resolution reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSnapshot {
    vars: BTreeMap<String, String>,
}

impl EnvSnapshot {
    /// Snapshot of the current process environment (non-UTF-8 values skipped).
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// Builds a snapshot from pairs (tests, child environments).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The trimmed, non-empty value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Sets `key`.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.vars.insert(key.to_string(), value.into());
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.vars.remove(key);
    }

    /// Iterates over all variables.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The home directory OpenClaw uses: `OPENCLAW_HOME` (a leading `~` expands
/// to `HOME`) > `HOME` > `USERPROFILE`.
pub fn resolve_home(env: &EnvSnapshot) -> Result<PathBuf, Error> {
    let os_home = env.get("HOME").or_else(|| env.get("USERPROFILE"));
    if let Some(h) = env.get(ENV_HOME) {
        if let Some(rest) = h.strip_prefix('~') {
            let base = os_home.ok_or(Error::NoHome)?;
            return Ok(PathBuf::from(format!("{base}{rest}")));
        }
        return Ok(PathBuf::from(h));
    }
    os_home.map(PathBuf::from).ok_or(Error::NoHome)
}

/// `<home>/.openclaw` for the default profile, `<home>/.openclaw-<p>` else.
pub fn canonical_state_dir(home: &Path, profile: &ProfileName) -> PathBuf {
    home.join(format!(".openclaw{}", profile.suffix()))
}

/// The two paths that identify a profile's gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePaths {
    /// The profile.
    pub profile: ProfileName,
    /// `OPENCLAW_STATE_DIR` or the canonical dir.
    pub state_dir: PathBuf,
    /// `OPENCLAW_CONFIG_PATH` or `<stateDir>/openclaw.json`.
    pub config_path: PathBuf,
    /// The ports it reserves (the registry's record; for a gateway, what
    /// `openclawctl` told it in `OPENCLAWCTL_PORT_PLAN`).
    pub ports: crate::ports::PortPlan,
    /// Its resource limits (the registry's record).
    pub limits: crate::limits::Limits,
}

impl ProfilePaths {
    /// `<stateDir>/logs`.
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// `<stateDir>/tmp/openclaw-<uid>`: where OpenClaw keeps its locks.
    pub fn lock_dir(&self) -> PathBuf {
        self.state_dir
            .join("tmp")
            .join(format!("openclaw-{}", nix::unistd::getuid()))
    }

    /// The state-dir ownership lock file.
    pub fn state_lock_path(&self) -> PathBuf {
        self.lock_dir().join("gateway.state.lock")
    }
}

/// The profile a process runs as: `OPENCLAW_PROFILE` or the default.
pub fn active_profile(env: &EnvSnapshot) -> Result<ProfileName, Error> {
    match env.get(ENV_PROFILE) {
        Some(p) => ProfileName::parse(p).map_err(Error::BadProfileEnv),
        None => Ok(ProfileName::default_profile()),
    }
}

/// Resolves state dir and config path from an environment that already had
/// [`apply_cli_profile_env`] applied (or never saw `--profile`).
///
/// ```
/// use openclaw_profiles::paths::{EnvSnapshot, apply_cli_profile_env, resolve_paths};
/// let mut env = EnvSnapshot::from_pairs([("HOME", "/home/u")]);
/// apply_cli_profile_env(&mut env, &"rescue".parse().unwrap()).unwrap();
/// let paths = resolve_paths(&env).unwrap();
/// assert_eq!(paths.state_dir, std::path::Path::new("/home/u/.openclaw-rescue"));
/// assert_eq!(paths.config_path, std::path::Path::new("/home/u/.openclaw-rescue/openclaw.json"));
/// ```
pub fn resolve_paths(env: &EnvSnapshot) -> Result<ProfilePaths, Error> {
    let profile = active_profile(env)?;
    let home = resolve_home(env)?;
    let state_dir = env
        .get(ENV_STATE_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| canonical_state_dir(&home, &profile));
    let config_path = env
        .get(ENV_CONFIG_PATH)
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir.join(CONFIG_FILE_NAME));
    let ports = env
        .get(crate::ports::ENV_PORT_PLAN)
        .and_then(|p| p.parse().ok())
        .unwrap_or_default();
    Ok(ProfilePaths {
        profile,
        state_dir,
        config_path,
        ports,
        // Limits are applied from outside (systemd, the keeper), never by
        // the gateway itself.
        limits: Default::default(),
    })
}

/// The service selectors a profile's own service would inject.
fn service_selector_defaults(profile: &ProfileName) -> [(&'static str, Vec<String>); 3] {
    let (label, unit, task) = if profile.is_default() {
        (
            "ai.openclaw.gateway".to_string(),
            "openclaw-gateway".to_string(),
            "OpenClaw Gateway".to_string(),
        )
    } else {
        (
            format!("ai.openclaw.{profile}"),
            format!("openclaw-gateway-{profile}"),
            format!("OpenClaw Gateway ({profile})"),
        )
    };
    [
        ("OPENCLAW_LAUNCHD_LABEL", vec![label]),
        (
            "OPENCLAW_SYSTEMD_UNIT",
            vec![format!("{unit}.service"), unit],
        ),
        ("OPENCLAW_WINDOWS_TASK_NAME", vec![task]),
    ]
}

/// What `--profile <p>` does to the environment (`applyCliProfileEnv`,
/// spec §1.3): sets `OPENCLAW_PROFILE`; fills `OPENCLAW_STATE_DIR` and
/// `OPENCLAW_CONFIG_PATH` unless they hold custom paths (values equal to
/// the inherited profile's canonical paths are replaced); drops inherited
/// service selectors that belong to the old profile; `dev` gets port 19001.
pub fn apply_cli_profile_env(env: &mut EnvSnapshot, profile: &ProfileName) -> Result<(), Error> {
    let home = resolve_home(env)?;
    let inherited = active_profile(env).unwrap_or_else(|_| ProfileName::default_profile());
    let inherited_state = canonical_state_dir(&home, &inherited);
    let inherited_config = inherited_state.join(CONFIG_FILE_NAME);
    let new_state = canonical_state_dir(&home, profile);

    env.set(ENV_PROFILE, profile.as_str());

    let state_dir = match env.get(ENV_STATE_DIR).map(PathBuf::from) {
        Some(custom) if custom != inherited_state => custom,
        _ => new_state,
    };
    env.set(ENV_STATE_DIR, state_dir.to_string_lossy());

    let keep_config = env
        .get(ENV_CONFIG_PATH)
        .map(PathBuf::from)
        .filter(|c| *c != inherited_config);
    let config = keep_config.unwrap_or_else(|| state_dir.join(CONFIG_FILE_NAME));
    env.set(ENV_CONFIG_PATH, config.to_string_lossy());

    if inherited != *profile {
        for (key, defaults) in service_selector_defaults(&inherited) {
            if env
                .get(key)
                .is_some_and(|v| defaults.iter().any(|d| d == v))
            {
                env.remove(key);
            }
        }
    }

    if profile.as_str() == "dev" && env.get(ENV_GATEWAY_PORT).is_none() {
        env.set(ENV_GATEWAY_PORT, "19001");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Environment pairs of a table row.
    type Vars = &'static [(&'static str, &'static str)];

    fn env(pairs: &[(&str, &str)]) -> EnvSnapshot {
        EnvSnapshot::from_pairs(pairs.iter().copied())
    }

    fn p(name: &str) -> ProfileName {
        ProfileName::parse(name).unwrap()
    }

    #[test]
    fn home_precedence() {
        let cases: &[(Vars, Option<&str>)] = &[
            (&[("HOME", "/h")], Some("/h")),
            (&[("HOME", "/h"), ("OPENCLAW_HOME", "/oc")], Some("/oc")),
            (&[("HOME", "/h"), ("OPENCLAW_HOME", "~/x")], Some("/h/x")),
            (&[("HOME", "/h"), ("OPENCLAW_HOME", "  ")], Some("/h")),
            (&[("USERPROFILE", "/u")], Some("/u")),
            (&[("HOME", "/h"), ("USERPROFILE", "/u")], Some("/h")),
            (&[], None),
        ];
        for (vars, want) in cases {
            let got = resolve_home(&env(vars)).ok();
            assert_eq!(got, want.map(PathBuf::from), "{vars:?}");
        }
    }

    #[test]
    fn resolve_paths_table() {
        // (env, state dir, config path)
        let cases: &[(Vars, &str, &str)] = &[
            (
                &[("HOME", "/h")],
                "/h/.openclaw",
                "/h/.openclaw/openclaw.json",
            ),
            (
                &[("HOME", "/h"), ("OPENCLAW_PROFILE", "a")],
                "/h/.openclaw-a",
                "/h/.openclaw-a/openclaw.json",
            ),
            (
                &[("HOME", "/h"), ("OPENCLAW_PROFILE", "Default")],
                "/h/.openclaw",
                "/h/.openclaw/openclaw.json",
            ),
            (
                &[("HOME", "/h"), ("OPENCLAW_STATE_DIR", "/s")],
                "/s",
                "/s/openclaw.json",
            ),
            (
                &[("HOME", "/h"), ("OPENCLAW_CONFIG_PATH", "/c.json")],
                "/h/.openclaw",
                "/c.json",
            ),
            (
                &[
                    ("HOME", "/h"),
                    ("OPENCLAW_PROFILE", "a"),
                    ("OPENCLAW_STATE_DIR", "/s"),
                    ("OPENCLAW_CONFIG_PATH", "/c.json"),
                ],
                "/s",
                "/c.json",
            ),
            (
                &[
                    ("HOME", "/h"),
                    ("OPENCLAW_HOME", "/oc"),
                    ("OPENCLAW_PROFILE", "b"),
                ],
                "/oc/.openclaw-b",
                "/oc/.openclaw-b/openclaw.json",
            ),
        ];
        for (vars, state, config) in cases {
            let got = resolve_paths(&env(vars)).unwrap();
            assert_eq!(got.state_dir, PathBuf::from(state), "{vars:?}");
            assert_eq!(got.config_path, PathBuf::from(config), "{vars:?}");
        }
    }

    #[test]
    fn bad_profile_env_is_an_error() {
        let err = resolve_paths(&env(&[("HOME", "/h"), ("OPENCLAW_PROFILE", "a b")])).unwrap_err();
        assert!(err.to_string().contains("OPENCLAW_PROFILE"));
    }

    #[test]
    fn cli_profile_env_table() {
        struct Case {
            env: &'static [(&'static str, &'static str)],
            profile: &'static str,
            want: &'static [(&'static str, Option<&'static str>)],
        }
        let cases = [
            // unset paths are filled from the new profile
            Case {
                env: &[("HOME", "/h")],
                profile: "a",
                want: &[
                    ("OPENCLAW_PROFILE", Some("a")),
                    ("OPENCLAW_STATE_DIR", Some("/h/.openclaw-a")),
                    ("OPENCLAW_CONFIG_PATH", Some("/h/.openclaw-a/openclaw.json")),
                    ("OPENCLAW_GATEWAY_PORT", None),
                ],
            },
            // custom paths are kept
            Case {
                env: &[
                    ("HOME", "/h"),
                    ("OPENCLAW_STATE_DIR", "/custom"),
                    ("OPENCLAW_CONFIG_PATH", "/cfg.json"),
                ],
                profile: "a",
                want: &[
                    ("OPENCLAW_STATE_DIR", Some("/custom")),
                    ("OPENCLAW_CONFIG_PATH", Some("/cfg.json")),
                ],
            },
            // custom state dir, config follows it
            Case {
                env: &[("HOME", "/h"), ("OPENCLAW_STATE_DIR", "/custom")],
                profile: "a",
                want: &[("OPENCLAW_CONFIG_PATH", Some("/custom/openclaw.json"))],
            },
            // inside service `b`: b's canonical paths are replaced by a's
            Case {
                env: &[
                    ("HOME", "/h"),
                    ("OPENCLAW_PROFILE", "b"),
                    ("OPENCLAW_STATE_DIR", "/h/.openclaw-b"),
                    ("OPENCLAW_CONFIG_PATH", "/h/.openclaw-b/openclaw.json"),
                    ("OPENCLAW_SYSTEMD_UNIT", "openclaw-gateway-b.service"),
                    ("OPENCLAW_LAUNCHD_LABEL", "ai.openclaw.b"),
                    ("OPENCLAW_WINDOWS_TASK_NAME", "OpenClaw Gateway (b)"),
                ],
                profile: "a",
                want: &[
                    ("OPENCLAW_PROFILE", Some("a")),
                    ("OPENCLAW_STATE_DIR", Some("/h/.openclaw-a")),
                    ("OPENCLAW_CONFIG_PATH", Some("/h/.openclaw-a/openclaw.json")),
                    ("OPENCLAW_SYSTEMD_UNIT", None),
                    ("OPENCLAW_LAUNCHD_LABEL", None),
                    ("OPENCLAW_WINDOWS_TASK_NAME", None),
                ],
            },
            // inside the default service: ~/.openclaw is replaced too
            Case {
                env: &[
                    ("HOME", "/h"),
                    ("OPENCLAW_STATE_DIR", "/h/.openclaw"),
                    ("OPENCLAW_SYSTEMD_UNIT", "openclaw-gateway"),
                ],
                profile: "a",
                want: &[
                    ("OPENCLAW_STATE_DIR", Some("/h/.openclaw-a")),
                    ("OPENCLAW_SYSTEMD_UNIT", None),
                ],
            },
            // a custom selector is not the old profile's default: kept
            Case {
                env: &[
                    ("HOME", "/h"),
                    ("OPENCLAW_PROFILE", "b"),
                    ("OPENCLAW_SYSTEMD_UNIT", "my-unit"),
                ],
                profile: "a",
                want: &[("OPENCLAW_SYSTEMD_UNIT", Some("my-unit"))],
            },
            // same profile again: selectors stay
            Case {
                env: &[
                    ("HOME", "/h"),
                    ("OPENCLAW_PROFILE", "a"),
                    ("OPENCLAW_SYSTEMD_UNIT", "openclaw-gateway-a.service"),
                ],
                profile: "a",
                want: &[("OPENCLAW_SYSTEMD_UNIT", Some("openclaw-gateway-a.service"))],
            },
            // dev gets 19001 unless a port is set
            Case {
                env: &[("HOME", "/h")],
                profile: "dev",
                want: &[("OPENCLAW_GATEWAY_PORT", Some("19001"))],
            },
            Case {
                env: &[("HOME", "/h"), ("OPENCLAW_GATEWAY_PORT", "20000")],
                profile: "dev",
                want: &[("OPENCLAW_GATEWAY_PORT", Some("20000"))],
            },
            // --profile default maps to ~/.openclaw
            Case {
                env: &[("HOME", "/h")],
                profile: "default",
                want: &[("OPENCLAW_STATE_DIR", Some("/h/.openclaw"))],
            },
        ];
        for case in cases {
            let mut e = env(case.env);
            apply_cli_profile_env(&mut e, &p(case.profile)).unwrap();
            for (key, want) in case.want {
                assert_eq!(
                    e.get(key),
                    *want,
                    "{key} for {:?} --profile {}",
                    case.env,
                    case.profile
                );
            }
        }
    }
}
