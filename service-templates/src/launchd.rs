//! Installing a profile as a launchd agent (macOS): env file (0600), env
//! wrapper (0700), plist (0644), then `launchctl bootstrap gui/<uid>`.
//! The driver is plain logic over [`Host`], compiled everywhere so its
//! calls are tested by recording; binaries select it on macOS only.

use std::path::{Path, PathBuf};

use crate::host::{CmdOutput, Host};
use crate::render::{env_file, launchd_plist, launchd_wrapper, parse_dotenv};
use crate::systemd::Outcome;
use crate::{Error, ServiceSpec};

/// `~/Library/LaunchAgents`.
pub fn agents_dir(home: &Path) -> PathBuf {
    home.join("Library/LaunchAgents")
}

/// The launchd driver for one user.
pub struct Launchd<'h, H: Host> {
    host: &'h mut H,
    home: PathBuf,
    uid: u32,
}

impl<'h, H: Host> Launchd<'h, H> {
    /// A driver for the user `uid` with home `home`.
    pub fn new(host: &'h mut H, home: PathBuf, uid: u32) -> Self {
        Self { host, home, uid }
    }

    /// `~/Library/LaunchAgents/<label>.plist`.
    pub fn plist_path(&self, label: &str) -> PathBuf {
        agents_dir(&self.home).join(format!("{label}.plist"))
    }

    fn launchctl(&mut self, args: &[&str]) -> Result<CmdOutput, Error> {
        self.host
            .run("launchctl", args)
            .map_err(|e| Error::Command {
                command: format!("launchctl {}", args.join(" ")),
                detail: e.to_string(),
            })
    }

    fn write(&mut self, path: &Path, text: &str, mode: u32) -> Result<(), Error> {
        self.host
            .write_file(path, text.as_bytes(), mode)
            .map_err(|source| Error::Io {
                action: "write",
                path: path.to_path_buf(),
                source,
            })
    }

    /// Installs (or, with `force`, rewrites) the agent and loads it.
    pub fn install(
        &mut self,
        spec: &ServiceSpec,
        dotenv: Option<&str>,
        force: bool,
    ) -> Result<Outcome, Error> {
        let label = spec.label();
        let path = self.plist_path(&label);
        let rendered = launchd_plist(spec);
        let outcome = match self.host.read_file(&path) {
            Some(existing) if existing == rendered => Outcome::AlreadyInstalled,
            Some(_) if !force => return Err(Error::Drift(path)),
            Some(_) => Outcome::Rewritten,
            None => Outcome::Installed,
        };
        let env = env_file(&dotenv.map(parse_dotenv).unwrap_or_default());
        self.write(&spec.launchd_env_file(), &env, 0o600)?;
        self.write(&spec.launchd_wrapper(), &launchd_wrapper(), 0o700)?;
        let domain = format!("gui/{}", self.uid);
        let target = format!("{domain}/{label}");
        if outcome != Outcome::AlreadyInstalled {
            if outcome == Outcome::Rewritten {
                let _ = self.launchctl(&["bootout", &target]);
            }
            self.write(&path, &rendered, 0o644)?;
        }
        let path_s = path.to_string_lossy().into_owned();
        let out = self.launchctl(&["bootstrap", &domain, &path_s])?;
        // Bootstrapping a loaded agent fails; then make sure it runs.
        if !out.success() {
            let kick = self.launchctl(&["kickstart", "-k", &target])?;
            if !kick.success() {
                return Err(Error::Command {
                    command: format!("launchctl bootstrap {domain} {path_s}"),
                    detail: out.stderr.trim().to_string(),
                });
            }
        }
        Ok(outcome)
    }

    /// Unloads the agent and removes the plist; the state dir stays.
    pub fn uninstall(&mut self, label: &str) -> Result<bool, Error> {
        let path = self.plist_path(label);
        let existed = self.host.read_file(&path).is_some();
        let _ = self.launchctl(&["bootout", &format!("gui/{}/{label}", self.uid)]);
        self.host.remove_file(&path).map_err(|source| Error::Io {
            action: "remove",
            path,
            source,
        })?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Call, Recorder};

    fn spec() -> ServiceSpec {
        ServiceSpec {
            profile: Some("ops".into()),
            binary: "/opt/oc/openclaw".into(),
            home: "/Users/u".into(),
            state_dir: "/Users/u/.openclaw-ops".into(),
            config_path: "/Users/u/.openclaw-ops/openclaw.json".into(),
            canonical_paths: true,
            port: 19789,
            ports: Default::default(),
            limits: Default::default(),
        }
    }

    #[test]
    fn install_writes_env_wrapper_and_plist_then_bootstraps() {
        let mut r = Recorder::default();
        let mut l = Launchd::new(&mut r, "/Users/u".into(), 501);
        assert_eq!(
            l.install(&spec(), Some("DISCORD_BOT_TOKEN=abc"), false)
                .unwrap(),
            Outcome::Installed
        );
        assert_eq!(
            r.calls[..3],
            [
                Call::Write(
                    "/Users/u/.openclaw-ops/service-env/ai.openclaw.ops.env".into(),
                    0o600
                ),
                Call::Write(
                    "/Users/u/.openclaw-ops/service-env/ai.openclaw.ops-env-wrapper.sh".into(),
                    0o700
                ),
                Call::Write(
                    "/Users/u/Library/LaunchAgents/ai.openclaw.ops.plist".into(),
                    0o644
                ),
            ]
        );
        assert_eq!(
            r.commands(),
            vec!["launchctl bootstrap gui/501 /Users/u/Library/LaunchAgents/ai.openclaw.ops.plist"]
        );
    }

    #[test]
    fn rewrite_boots_out_first_and_uninstall_boots_out_and_removes() {
        let mut r = Recorder::default();
        let mut l = Launchd::new(&mut r, "/Users/u".into(), 501);
        l.install(&spec(), None, false).unwrap();
        let mut moved = spec();
        moved.port = 20000;
        assert!(matches!(
            l.install(&moved, None, false),
            Err(Error::Drift(_))
        ));
        assert_eq!(l.install(&moved, None, true).unwrap(), Outcome::Rewritten);
        assert!(l.uninstall("ai.openclaw.ops").unwrap());
        let cmds = r.commands();
        assert_eq!(cmds[1], "launchctl bootout gui/501/ai.openclaw.ops");
        assert_eq!(
            cmds.last().unwrap(),
            "launchctl bootout gui/501/ai.openclaw.ops"
        );
        assert!(!r.files.contains_key(&PathBuf::from(
            "/Users/u/Library/LaunchAgents/ai.openclaw.ops.plist"
        )));
    }

    #[test]
    fn an_already_loaded_agent_is_kickstarted() {
        let mut r = Recorder::default();
        r.answer(
            "launchctl bootstrap",
            CmdOutput {
                code: Some(5),
                stdout: String::new(),
                stderr: "Bootstrap failed: 5: Input/output error".into(),
            },
        );
        let mut l = Launchd::new(&mut r, "/Users/u".into(), 501);
        l.install(&spec(), None, false).unwrap();
        assert_eq!(
            r.commands()[1],
            "launchctl kickstart -k gui/501/ai.openclaw.ops"
        );
    }
}

/// Parses `launchctl print gui/<uid>/<label>` into the same shape as a
/// systemd unit's status.
pub fn parse_print(text: &str, installed: bool) -> crate::systemd::UnitStatus {
    let mut s = crate::systemd::UnitStatus {
        installed,
        unit_file_state: if installed {
            "enabled".into()
        } else {
            String::new()
        },
        ..Default::default()
    };
    for line in text.lines().map(str::trim) {
        let Some((k, v)) = line.split_once(" = ") else {
            continue;
        };
        match k {
            "state" => {
                s.active_state = if v == "running" {
                    "active".into()
                } else {
                    "inactive".into()
                };
                s.sub_state = v.to_string();
            }
            "pid" => s.main_pid = v.parse().ok(),
            "runs" => s.restarts = v.parse::<u32>().unwrap_or(1).saturating_sub(1),
            "last exit code" => s.last_exit_code = v.parse().ok(),
            _ => {}
        }
    }
    s
}

#[cfg(test)]
mod print_tests {
    #[test]
    fn print_output_is_parsed() {
        let s = super::parse_print(
            "gui/501/ai.openclaw.ops = {\n\tstate = running\n\tpid = 812\n\truns = 3\n\tlast exit code = 78\n}",
            true,
        );
        assert_eq!(
            (
                s.active_state.as_str(),
                s.main_pid,
                s.restarts,
                s.last_exit_code
            ),
            ("active", Some(812), 2, Some(78))
        );
    }
}
