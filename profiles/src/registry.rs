//! The profiles `openclawctl` knows: those it created (recorded in its own
//! `profiles.toml`, which also keeps custom state-dir and config paths) and
//! those found on disk as `~/.openclaw-<name>` (made by the real
//! `openclaw --profile <name>`), plus `~/.openclaw` as `default`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::atomic::{create_private_dir, write_atomic};
use crate::contract::{CONFIG_FILE_NAME, ENV_CONFIG_PATH, ENV_HOME, ENV_PROFILE, ENV_STATE_DIR};
use crate::name::ProfileName;
use crate::paths::{EnvSnapshot, ProfilePaths, canonical_state_dir, resolve_home};

/// `OPENCLAWCTL_HOME`: where `openclawctl` keeps its own files.
pub const ENV_CTL_HOME: &str = "OPENCLAWCTL_HOME";

/// Errors reading or writing the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Path resolution failed.
    #[error(transparent)]
    Paths(#[from] crate::paths::Error),
    /// The registry file could not be read or written.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The registry file is not valid.
    #[error("invalid profile registry {}{}: {message}; fix or remove the file", .path.display(), .at.map_or(String::new(), |(l, c)| format!(":{l}:{c}")))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line and column (1-based) of the error, when known.
        at: Option<(usize, usize)>,
        /// The parser's message.
        message: String,
    },
    /// Another `openclawctl` kept the registry locked too long.
    #[error("the profile registry {} stayed locked by another openclawctl for {}s; try again", .path.display(), .waited.as_secs())]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// A profile name in the registry is not valid.
    #[error("invalid profile registry {}: {source}", .path.display())]
    BadName {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: crate::name::NameError,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RegistryFile {
    #[serde(default = "registry_version")]
    version: u32,
    #[serde(default, rename = "profile")]
    profiles: Vec<Entry>,
}

fn registry_version() -> u32 {
    1
}

/// One profile as recorded by `openclawctl profile create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Entry {
    /// Profile name.
    pub name: String,
    /// A custom state dir, when not `~/.openclaw-<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// A custom config path, when not `<stateDir>/openclaw.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_path: Option<PathBuf>,
    /// The port plan, when not `full`.
    #[serde(default, skip_serializing_if = "crate::ports::PortPlan::is_full")]
    pub ports: crate::ports::PortPlan,
    /// Resource limits, when any.
    #[serde(default, skip_serializing_if = "crate::limits::Limits::is_empty")]
    pub limits: crate::limits::Limits,
}

/// How a profile became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Created by `openclawctl profile create`.
    Registered,
    /// Found on disk as `~/.openclaw[-<name>]`.
    Discovered,
}

/// A known profile with its resolved paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownProfile {
    /// Paths of the profile.
    pub paths: ProfilePaths,
    /// How it became known.
    pub origin: Origin,
}

/// The registry of profiles plus the home it was resolved against.
#[derive(Debug)]
pub struct Registry {
    home: PathBuf,
    path: PathBuf,
    entries: Vec<Entry>,
    /// Held while this registry may be edited (see [`Registry::lock`]).
    lock: Option<File>,
}

/// How long [`Registry::lock`] waits for another writer.
const LOCK_WAIT: Duration = Duration::from_secs(30);

fn parse_registry(path: &Path, text: &str) -> Result<RegistryFile, Error> {
    toml::from_str::<RegistryFile>(text).map_err(|e| {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            (line, col)
        });
        Error::Invalid {
            path: path.to_path_buf(),
            at,
            message: e.message().trim_end().to_string(),
        }
    })
}

/// `$OPENCLAWCTL_HOME`, else `$XDG_CONFIG_HOME/openclawctl`, else
/// `<home>/.config/openclawctl`.
pub fn ctl_home(env: &EnvSnapshot) -> Result<PathBuf, Error> {
    if let Some(p) = env.get(ENV_CTL_HOME) {
        return Ok(PathBuf::from(p));
    }
    if let Some(x) = env.get("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(x).join("openclawctl"));
    }
    Ok(resolve_home(env)?.join(".config").join("openclawctl"))
}

impl Registry {
    /// Loads the registry (an absent file is an empty registry).
    pub fn load(env: &EnvSnapshot) -> Result<Self, Error> {
        let home = resolve_home(env)?;
        let path = ctl_home(env)?.join("profiles.toml");
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => parse_registry(&path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RegistryFile::default(),
            Err(source) => {
                return Err(Error::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        for e in &file.profiles {
            ProfileName::parse(&e.name).map_err(|source| Error::BadName {
                path: path.clone(),
                source,
            })?;
        }
        Ok(Self {
            home,
            path,
            entries: file.profiles,
            lock: None,
        })
    }

    /// Like [`Registry::load`], but a damaged registry file does not stop
    /// the caller: the registry then holds only the profiles found on disk,
    /// and the error comes back beside it (to warn, and for doctor's
    /// `registry-invalid`). Only path resolution errors are fatal.
    pub fn load_lenient(env: &EnvSnapshot) -> Result<(Self, Option<Error>), Error> {
        match Self::load(env) {
            Ok(r) => Ok((r, None)),
            Err(e @ (Error::Invalid { .. } | Error::BadName { .. } | Error::Io { .. })) => {
                let home = resolve_home(env)?;
                let path = ctl_home(env)?.join("profiles.toml");
                let empty = Self {
                    home,
                    path,
                    entries: Vec::new(),
                    lock: None,
                };
                Ok((empty, Some(e)))
            }
            Err(e) => Err(e),
        }
    }

    /// Loads the registry under its exclusive lock (`profiles.lock` beside
    /// the file), for a read-modify-write: every edit ([`Registry::upsert`],
    /// [`Registry::remove`]) and every decision that must not race with
    /// another writer (a port allocation) happens while the returned
    /// registry is alive. Waits up to 30 s for another writer.
    pub fn lock(env: &EnvSnapshot) -> Result<Self, Error> {
        let path = ctl_home(env)?.join("profiles.toml");
        let lock_path = path.with_file_name("profiles.lock");
        let started = Instant::now();
        let file = loop {
            let taken = crate::lock::try_lock_file(&lock_path).map_err(|e| Error::Io {
                action: "lock",
                path: lock_path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            match taken {
                Some(file) => break file,
                None if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                None => {
                    return Err(Error::Busy {
                        path: lock_path,
                        waited: LOCK_WAIT,
                    });
                }
            }
        };
        let mut registry = Self::load(env)?;
        registry.lock = Some(file);
        Ok(registry)
    }

    /// The registry file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The home directory profiles resolve against.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Records `entry`, replacing one of the same name, and saves atomically.
    pub fn upsert(&mut self, entry: Entry) -> Result<(), Error> {
        self.entries.retain(|e| e.name != entry.name);
        self.entries.push(entry);
        self.entries.sort_by(|a, b| a.name.cmp(&b.name));
        self.save()
    }

    /// Forgets the profile `name` and saves; true if it was recorded.
    pub fn remove(&mut self, name: &ProfileName) -> Result<bool, Error> {
        let before = self.entries.len();
        self.entries.retain(|e| e.name != name.as_str());
        let removed = self.entries.len() != before;
        if removed {
            self.save()?;
        }
        Ok(removed)
    }

    fn save(&self) -> Result<(), Error> {
        assert!(
            self.lock.is_some(),
            "the registry is only written under its lock (Registry::lock)"
        );
        let io = |action| {
            move |source| Error::Io {
                action,
                path: self.path.clone(),
                source,
            }
        };
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir).map_err(io("create the directory of"))?;
        }
        let file = RegistryFile {
            version: registry_version(),
            profiles: self.entries.clone(),
        };
        let text = toml::to_string_pretty(&file).expect("registry serializes");
        write_atomic(&self.path, text.as_bytes(), 0o600).map_err(io("write"))
    }

    /// The recorded entry for `name`.
    pub fn entry(&self, name: &ProfileName) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name.as_str())
    }

    /// The paths of profile `name`: its recorded custom paths, else the
    /// canonical ones OpenClaw would use.
    pub fn paths_for(&self, name: &ProfileName) -> ProfilePaths {
        let entry = self.entry(name);
        let state_dir = entry
            .and_then(|e| e.state_dir.clone())
            .unwrap_or_else(|| canonical_state_dir(&self.home, name));
        let config_path = entry
            .and_then(|e| e.config_path.clone())
            .unwrap_or_else(|| state_dir.join(CONFIG_FILE_NAME));
        ProfilePaths {
            profile: name.clone(),
            state_dir,
            config_path,
            ports: entry.map(|e| e.ports).unwrap_or_default(),
            limits: entry.map(|e| e.limits).unwrap_or_default(),
        }
    }

    /// True if `name` is recorded or exists on disk.
    pub fn is_known(&self, name: &ProfileName) -> bool {
        self.entry(name).is_some() || canonical_state_dir(&self.home, name).is_dir()
    }

    /// Every known profile, sorted by name.
    pub fn list(&self) -> Vec<KnownProfile> {
        let mut out: BTreeMap<ProfileName, KnownProfile> = BTreeMap::new();
        for e in &self.entries {
            if let Ok(name) = ProfileName::parse(&e.name) {
                let paths = self.paths_for(&name);
                out.insert(
                    name,
                    KnownProfile {
                        paths,
                        origin: Origin::Registered,
                    },
                );
            }
        }
        for name in discover(&self.home) {
            out.entry(name.clone()).or_insert_with(|| KnownProfile {
                paths: self.paths_for(&name),
                origin: Origin::Discovered,
            });
        }
        out.into_values().collect()
    }
}

/// Profile dirs under `home`: `.openclaw` (default) and `.openclaw-<name>`.
fn discover(home: &Path) -> Vec<ProfileName> {
    let Ok(dir) = std::fs::read_dir(home) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in dir.flatten() {
        let file_name = entry.file_name();
        let Some(s) = file_name.to_str() else {
            continue;
        };
        let name = if s == ".openclaw" {
            Some(ProfileName::default_profile())
        } else {
            s.strip_prefix(".openclaw-")
                .and_then(|n| ProfileName::parse(n).ok())
        };
        // `.openclaw-default` is not a profile dir: `default` maps to `.openclaw`.
        if let Some(n) = name.filter(|n| !(n.is_default() && s != ".openclaw"))
            && entry.path().is_dir()
        {
            names.push(n);
        }
    }
    names
}

/// The environment a profile's gateway runs with: ours with every inherited
/// `OPENCLAW_*` removed (except `OPENCLAW_HOME`), then `OPENCLAW_PROFILE`,
/// `OPENCLAW_STATE_DIR` and `OPENCLAW_CONFIG_PATH` set explicitly.
pub fn child_env(base: &EnvSnapshot, paths: &ProfilePaths) -> EnvSnapshot {
    let mut env = EnvSnapshot::from_pairs(
        base.iter()
            .filter(|(k, _)| !k.starts_with("OPENCLAW_") || *k == ENV_HOME)
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env.set(ENV_PROFILE, paths.profile.as_str());
    env.set(ENV_STATE_DIR, paths.state_dir.to_string_lossy());
    env.set(ENV_CONFIG_PATH, paths.config_path.to_string_lossy());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_for(home: &Path) -> EnvSnapshot {
        EnvSnapshot::from_pairs([("HOME", home.to_str().unwrap())])
    }

    #[test]
    fn lists_registered_and_discovered_profiles() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".openclaw-fromcli")).unwrap();
        std::fs::create_dir(home.path().join(".openclaw")).unwrap();
        std::fs::create_dir(home.path().join(".openclaw-bad name")).unwrap();
        std::fs::write(home.path().join(".openclaw-file"), "").unwrap();
        let env = env_for(home.path());
        let mut reg = Registry::lock(&env).unwrap();
        reg.upsert(Entry {
            name: "custom".into(),
            state_dir: Some("/srv/oc".into()),
            config_path: None,
            ports: crate::ports::PortPlan::Compact,
            limits: Default::default(),
        })
        .unwrap();
        let reg = Registry::load(&env).unwrap();
        // The port plan is recorded with the profile.
        assert_eq!(
            reg.paths_for(&ProfileName::parse("custom").unwrap()).ports,
            crate::ports::PortPlan::Compact
        );
        let listed: Vec<_> = reg
            .list()
            .into_iter()
            .map(|k| (k.paths.profile.to_string(), k.paths.state_dir, k.origin))
            .collect();
        assert_eq!(
            listed,
            vec![
                (
                    "custom".into(),
                    PathBuf::from("/srv/oc"),
                    Origin::Registered
                ),
                (
                    "default".into(),
                    home.path().join(".openclaw"),
                    Origin::Discovered
                ),
                (
                    "fromcli".into(),
                    home.path().join(".openclaw-fromcli"),
                    Origin::Discovered
                ),
            ]
        );
        assert_eq!(
            reg.paths_for(&ProfileName::parse("custom").unwrap())
                .config_path,
            PathBuf::from("/srv/oc/openclaw.json")
        );
    }

    #[test]
    fn invalid_registry_is_a_clear_error() {
        let home = tempfile::tempdir().unwrap();
        let ctl = home.path().join(".config/openclawctl");
        std::fs::create_dir_all(&ctl).unwrap();
        std::fs::write(
            ctl.join("profiles.toml"),
            "[[profile]]\nname = 'a'\nbogus = 1\n",
        )
        .unwrap();
        let err = Registry::load(&env_for(home.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid profile registry")
                && err.contains("profiles.toml:3:1")
                && err.contains("bogus"),
            "{err}"
        );
        let (reg, why) = Registry::load_lenient(&env_for(home.path())).unwrap();
        assert!(why.is_some() && reg.list().is_empty());
    }

    #[test]
    fn concurrent_edits_under_the_lock_lose_nothing() {
        let home = tempfile::tempdir().unwrap();
        let env = env_for(home.path());
        std::thread::scope(|s| {
            for i in 0..16 {
                let env = &env;
                s.spawn(move || {
                    let mut reg = Registry::lock(env).unwrap();
                    reg.upsert(Entry {
                        name: format!("p{i}"),
                        state_dir: None,
                        config_path: None,
                        ports: Default::default(),
                        limits: Default::default(),
                    })
                    .unwrap();
                });
            }
        });
        assert_eq!(Registry::load(&env).unwrap().entries.len(), 16);
    }

    #[test]
    fn child_env_scrubs_inherited_openclaw_vars() {
        let base = EnvSnapshot::from_pairs([
            ("HOME", "/h"),
            ("PATH", "/bin"),
            ("OPENCLAW_HOME", "/oh"),
            ("OPENCLAW_GATEWAY_TOKEN", "leak"),
            ("OPENCLAW_STATE_DIR", "/other"),
            ("OPENCLAW_SYSTEMD_UNIT", "openclaw-gateway-b"),
        ]);
        let paths = ProfilePaths {
            profile: ProfileName::parse("a").unwrap(),
            state_dir: "/s".into(),
            config_path: "/s/openclaw.json".into(),
            ports: Default::default(),
            limits: Default::default(),
        };
        let env = child_env(&base, &paths);
        let got: Vec<_> = env.iter().collect();
        assert_eq!(
            got,
            vec![
                ("HOME", "/h"),
                ("OPENCLAW_CONFIG_PATH", "/s/openclaw.json"),
                ("OPENCLAW_HOME", "/oh"),
                ("OPENCLAW_PROFILE", "a"),
                ("OPENCLAW_STATE_DIR", "/s"),
                ("PATH", "/bin"),
            ]
        );
    }
}
