//! The OS's own service manager for this user, as both binaries use it:
//! systemd user units on Linux, launchd agents on macOS. Builds the
//! [`ServiceSpec`] of a profile and runs the drivers on the real host.

use std::path::{Path, PathBuf};

use openclaw_profiles::contract::CONFIG_FILE_NAME;
use openclaw_profiles::paths::{EnvSnapshot, ProfilePaths, canonical_state_dir};

use crate::host::RealHost;
use crate::systemd::{Outcome, Systemd, UnitStatus};
use crate::{Error, ServiceSpec, label, unit_name};

/// Which manager this OS has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// systemd user units.
    Systemd,
    /// launchd agents.
    Launchd,
}

impl Kind {
    /// `systemd` / `launchd` (the `managedBy` spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Systemd => "systemd",
            Self::Launchd => "launchd",
        }
    }
}

/// The user's service manager.
#[derive(Debug, Clone)]
pub struct Native {
    /// Which one.
    pub kind: Kind,
    /// The user's home.
    pub home: PathBuf,
    /// Where user units live (systemd).
    pub unit_dir: PathBuf,
    /// `USER` or `LOGNAME` from the environment, if set; see [`Native::user`].
    pub env_user: Option<String>,
    /// The user's uid (launchd domains).
    pub uid: u32,
}

/// The spec of a profile's service: its paths, the port baked in, and the
/// binary to run (made absolute).
pub fn spec_for(paths: &ProfilePaths, home: &Path, binary: &Path, port: u16) -> ServiceSpec {
    let binary = std::fs::canonicalize(binary).unwrap_or_else(|_| binary.to_path_buf());
    let canonical = canonical_state_dir(home, &paths.profile);
    ServiceSpec {
        profile: (!paths.profile.is_default()).then(|| paths.profile.to_string()),
        binary,
        home: home.to_path_buf(),
        state_dir: paths.state_dir.clone(),
        config_path: paths.config_path.clone(),
        canonical_paths: paths.state_dir == canonical
            && paths.config_path == canonical.join(CONFIG_FILE_NAME),
        port,
        ports: paths.ports,
        limits: paths.limits,
    }
}

impl Native {
    /// The manager for the user of `env` (`home` already resolved).
    pub fn for_user(env: &EnvSnapshot, home: &Path) -> Self {
        let kind = if cfg!(target_os = "macos") {
            Kind::Launchd
        } else {
            Kind::Systemd
        };
        let uid = nix::unistd::getuid();
        let env_user = env
            .get("USER")
            .or_else(|| env.get("LOGNAME"))
            .map(str::to_string);
        Self {
            kind,
            home: home.to_path_buf(),
            unit_dir: crate::systemd::unit_dir(home, env.get("XDG_CONFIG_HOME").map(Path::new)),
            env_user,
            uid: uid.as_raw(),
        }
    }

    /// The user's name (linger, messages): `USER`/`LOGNAME`, else the
    /// password database. Looked up only when needed: a keeper, which only
    /// asks whether a service file exists, never pays for an NSS lookup.
    pub fn user(&self) -> String {
        self.env_user.clone().unwrap_or_else(|| {
            let uid = nix::unistd::Uid::from_raw(self.uid);
            nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| self.uid.to_string())
        })
    }

    /// The unit name or label of a profile.
    pub fn service_name(&self, profile: Option<&str>) -> String {
        match self.kind {
            Kind::Systemd => unit_name(profile),
            Kind::Launchd => label(profile),
        }
    }

    /// The file a profile's service lives in.
    pub fn service_path(&self, profile: Option<&str>) -> PathBuf {
        match self.kind {
            Kind::Systemd => self.unit_dir.join(unit_name(profile)),
            Kind::Launchd => {
                crate::launchd::agents_dir(&self.home).join(format!("{}.plist", label(profile)))
            }
        }
    }

    /// True if the profile's service file exists.
    pub fn is_installed(&self, profile: Option<&str>) -> bool {
        self.service_path(profile).is_file()
    }

    /// What `install` would write, byte for byte.
    /// Rewrites the installed service file of `spec` if it differs from what
    /// would be rendered now (the manager reloads its units), without
    /// starting anything. Returns the path, and whether it was rewritten.
    pub fn rewrite(&self, spec: &ServiceSpec) -> std::io::Result<(PathBuf, bool)> {
        let path = self.service_path(spec.profile.as_deref());
        let rendered = self.render(spec);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(rendered.as_str()) {
            return Ok((path, false));
        }
        openclaw_profiles::atomic::write_atomic(&path, rendered.as_bytes(), 0o644)?;
        if self.kind == Kind::Systemd {
            let _ = std::process::Command::new("systemctl")
                .args(["--user", "daemon-reload"])
                .output();
        }
        Ok((path, true))
    }

    pub fn render(&self, spec: &ServiceSpec) -> String {
        match self.kind {
            Kind::Systemd => crate::render::systemd_unit(spec),
            Kind::Launchd => crate::render::launchd_plist(spec),
        }
    }

    /// Installs and starts; returns the outcome and warnings (linger).
    pub fn install(
        &self,
        spec: &ServiceSpec,
        dotenv: Option<&str>,
        force: bool,
    ) -> Result<(Outcome, Vec<String>), Error> {
        // Units and plists hold these line by line (and unescaped in places).
        for (what, p) in [
            ("the gateway binary", &spec.binary),
            ("the home", &spec.home),
            ("the state dir", &spec.state_dir),
            ("the config", &spec.config_path),
        ] {
            let text = p.to_string_lossy();
            if text.chars().any(char::is_control) {
                return Err(Error::BadPath {
                    what,
                    path: text.into_owned(),
                });
            }
        }
        let mut host = RealHost;
        match self.kind {
            Kind::Systemd => {
                let mut sd = Systemd::new(&mut host, self.unit_dir.clone(), &self.user());
                let outcome = sd.install(spec, dotenv, force)?;
                let warnings = sd
                    .linger_warning(Path::new("/var/lib/systemd/linger"))
                    .into_iter()
                    .collect();
                Ok((outcome, warnings))
            }
            Kind::Launchd => {
                let mut l = crate::launchd::Launchd::new(&mut host, self.home.clone(), self.uid);
                Ok((l.install(spec, dotenv, force)?, Vec::new()))
            }
        }
    }

    /// Stops and removes the service; true if it was installed.
    pub fn uninstall(&self, profile: Option<&str>) -> Result<bool, Error> {
        let mut host = RealHost;
        match self.kind {
            Kind::Systemd => Systemd::new(&mut host, self.unit_dir.clone(), &self.user())
                .uninstall(&unit_name(profile)),
            Kind::Launchd => crate::launchd::Launchd::new(&mut host, self.home.clone(), self.uid)
                .uninstall(&label(profile)),
        }
    }

    /// `start`, `stop` or `restart` through the manager.
    pub fn control(&self, verb: &str, profile: Option<&str>) -> Result<(), Error> {
        let mut host = RealHost;
        match self.kind {
            Kind::Systemd => Systemd::new(&mut host, self.unit_dir.clone(), &self.user())
                .control(verb, &unit_name(profile)),
            Kind::Launchd => {
                let target = format!("gui/{}/{}", self.uid, label(profile));
                let args: Vec<&str> = match verb {
                    "stop" => vec!["kill", "SIGTERM", &target],
                    _ => vec!["kickstart", "-k", &target],
                };
                let out = crate::host::Host::run(&mut host, "launchctl", &args).map_err(|e| {
                    Error::Command {
                        command: format!("launchctl {}", args.join(" ")),
                        detail: e.to_string(),
                    }
                })?;
                if out.success() {
                    Ok(())
                } else {
                    Err(Error::Command {
                        command: format!("launchctl {}", args.join(" ")),
                        detail: out.stderr.trim().to_string(),
                    })
                }
            }
        }
    }

    /// What the manager says about a profile's service.
    pub fn status(&self, profile: Option<&str>) -> Result<UnitStatus, Error> {
        let mut host = RealHost;
        match self.kind {
            Kind::Systemd => Systemd::new(&mut host, self.unit_dir.clone(), &self.user())
                .status(&unit_name(profile)),
            Kind::Launchd => {
                let target = format!("gui/{}/{}", self.uid, label(profile));
                let out = crate::host::Host::run(&mut host, "launchctl", &["print", &target])
                    .map_err(|e| Error::Command {
                        command: format!("launchctl print {target}"),
                        detail: e.to_string(),
                    })?;
                Ok(crate::launchd::parse_print(
                    &out.stdout,
                    self.is_installed(profile),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_a_newline_is_refused_before_anything_is_written() {
        let home = tempfile::tempdir().unwrap();
        let env = openclaw_profiles::paths::EnvSnapshot::from_pairs([(
            "HOME",
            home.path().to_str().unwrap(),
        )]);
        let native = Native::for_user(&env, home.path());
        let paths = ProfilePaths {
            profile: openclaw_profiles::ProfileName::parse("a").unwrap(),
            state_dir: home.path().join("bad\nstate"),
            config_path: home.path().join("bad\nstate/openclaw.json"),
            ports: Default::default(),
            limits: Default::default(),
        };
        let spec = spec_for(&paths, home.path(), Path::new("/usr/bin/openclaw"), 18789);
        let err = native.install(&spec, None, false).unwrap_err().to_string();
        assert!(err.contains("control character"), "{err}");
        assert!(std::fs::read_dir(home.path()).unwrap().next().is_none());
    }
}
