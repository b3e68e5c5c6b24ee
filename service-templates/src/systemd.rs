//! Installing a profile as a systemd user unit: write the env file and the
//! unit atomically, `daemon-reload`, `enable`, `start`; and the reverse.
//! Every call goes through [`Host`], so the driver is tested by recording.

use std::path::{Path, PathBuf};

use crate::host::{CmdOutput, Host};
use crate::render::{env_file, parse_dotenv, systemd_unit};
use crate::{Error, ServiceSpec};

/// What `install` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Wrote a new unit.
    Installed,
    /// The unit was already exactly as rendered.
    AlreadyInstalled,
    /// Rewrote a drifted unit (`--force`).
    Rewritten,
}

/// What `systemctl --user show` says about a unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitStatus {
    /// The unit file exists.
    pub installed: bool,
    /// `UnitFileState` (`enabled`, `disabled`, ...).
    pub unit_file_state: String,
    /// `ActiveState` (`active`, `activating`, `failed`, `inactive`, ...).
    pub active_state: String,
    /// `SubState` (`running`, `auto-restart`, `dead`, ...).
    pub sub_state: String,
    /// `MainPID`, when one runs.
    pub main_pid: Option<u32>,
    /// `NRestarts`: automatic restarts since the unit was started.
    pub restarts: u32,
    /// Exit code of the last main process, when it exited.
    pub last_exit_code: Option<i32>,
    /// Signal number that killed the last main process.
    pub last_exit_signal: Option<i32>,
    /// When the last main process exited, µs since boot (monotonic).
    pub last_exit_monotonic_us: Option<u64>,
}

/// The systemd user driver.
pub struct Systemd<'h, H: Host> {
    host: &'h mut H,
    unit_dir: PathBuf,
    user: String,
}

/// `$XDG_CONFIG_HOME/systemd/user`, else `~/.config/systemd/user`.
pub fn unit_dir(home: &Path, xdg_config_home: Option<&Path>) -> PathBuf {
    xdg_config_home
        .map(Path::to_path_buf)
        .unwrap_or_else(|| home.join(".config"))
        .join("systemd")
        .join("user")
}

fn cmd_err(line: &str, out: &CmdOutput) -> Error {
    let detail = out.stderr.lines().next().unwrap_or("").trim().to_string();
    Error::Command {
        command: line.to_string(),
        detail: if detail.is_empty() {
            format!("exit {:?}", out.code)
        } else {
            detail
        },
    }
}

impl<'h, H: Host> Systemd<'h, H> {
    /// A driver writing units into `unit_dir` for `user`.
    pub fn new(host: &'h mut H, unit_dir: PathBuf, user: &str) -> Self {
        Self {
            host,
            unit_dir,
            user: user.to_string(),
        }
    }

    /// Where a unit lives.
    pub fn unit_path(&self, unit: &str) -> PathBuf {
        self.unit_dir.join(unit)
    }

    fn systemctl(&mut self, args: &[&str]) -> Result<CmdOutput, Error> {
        let mut full = vec!["--user"];
        full.extend_from_slice(args);
        let line = format!("systemctl {}", full.join(" "));
        self.host
            .run("systemctl", &full)
            .map_err(|e| Error::Command {
                command: line,
                detail: e.to_string(),
            })
    }

    fn systemctl_ok(&mut self, args: &[&str]) -> Result<CmdOutput, Error> {
        let out = self.systemctl(args)?;
        if out.success() {
            Ok(out)
        } else {
            Err(cmd_err(
                &format!("systemctl --user {}", args.join(" ")),
                &out,
            ))
        }
    }

    /// Fails with the fix when no user manager answers.
    pub fn check_manager(&mut self) -> Result<(), Error> {
        let out = self
            .systemctl(&["show", "-p", "SystemState", "--value"])
            .map_err(|e| Error::NoUserManager {
                detail: e.to_string(),
                user: self.user.clone(),
            })?;
        if out.success() && !out.stdout.trim().is_empty() {
            return Ok(());
        }
        Err(Error::NoUserManager {
            detail: out
                .stderr
                .lines()
                .next()
                .unwrap_or("no answer")
                .trim()
                .to_string(),
            user: self.user.clone(),
        })
    }

    /// A warning when the user does not linger (the service would stop at
    /// logout and not start at boot).
    pub fn linger_warning(&self, linger_dir: &Path) -> Option<String> {
        (!linger_dir.join(&self.user).exists()).then(|| {
            format!(
                "linger is off for user {0}: the gateway stops when you log out and does not start at boot; enable it with `sudo loginctl enable-linger {0}`",
                self.user
            )
        })
    }

    /// Installs (or, with `force`, rewrites) the unit of `spec` and starts
    /// it. `dotenv` is the profile's `.env` (secrets projected into the
    /// 0600 env file, never into the unit).
    pub fn install(
        &mut self,
        spec: &ServiceSpec,
        dotenv: Option<&str>,
        force: bool,
    ) -> Result<Outcome, Error> {
        self.check_manager()?;
        let unit = spec.unit_name();
        let path = self.unit_path(&unit);
        let rendered = systemd_unit(spec);
        let outcome = match self.host.read_file(&path) {
            Some(existing) if existing == rendered => Outcome::AlreadyInstalled,
            Some(_) if !force => return Err(Error::Drift(path)),
            Some(_) => Outcome::Rewritten,
            None => Outcome::Installed,
        };
        let env = env_file(&dotenv.map(parse_dotenv).unwrap_or_default());
        let env_path = spec.systemd_env_file();
        self.host
            .write_file(&env_path, env.as_bytes(), 0o600)
            .map_err(|source| Error::Io {
                action: "write",
                path: env_path,
                source,
            })?;
        if outcome != Outcome::AlreadyInstalled {
            self.host
                .write_file(&path, rendered.as_bytes(), 0o644)
                .map_err(|source| Error::Io {
                    action: "write",
                    path: path.clone(),
                    source,
                })?;
        }
        self.systemctl_ok(&["daemon-reload"])?;
        self.systemctl_ok(&["enable", &unit])?;
        let verb = if outcome == Outcome::Rewritten {
            "restart"
        } else {
            "start"
        };
        self.systemctl_ok(&[verb, &unit])?;
        Ok(outcome)
    }

    /// Stops, disables and removes the unit; the state dir stays. Returns
    /// whether a unit file was there.
    pub fn uninstall(&mut self, unit: &str) -> Result<bool, Error> {
        let path = self.unit_path(unit);
        let existed = self.host.read_file(&path).is_some();
        if existed {
            // Either may fail for a unit the manager never loaded: fine.
            let _ = self.systemctl(&["stop", unit]);
            let _ = self.systemctl(&["disable", unit]);
        }
        self.host.remove_file(&path).map_err(|source| Error::Io {
            action: "remove",
            path: path.clone(),
            source,
        })?;
        if existed {
            self.systemctl_ok(&["daemon-reload"])?;
            let _ = self.systemctl(&["reset-failed", unit]);
        }
        Ok(existed)
    }

    /// `start`, `stop` or `restart` of an installed unit.
    pub fn control(&mut self, verb: &str, unit: &str) -> Result<(), Error> {
        self.systemctl_ok(&[verb, unit]).map(|_| ())
    }

    /// What the manager says about `unit`.
    pub fn status(&mut self, unit: &str) -> Result<UnitStatus, Error> {
        let installed = self.host.read_file(&self.unit_path(unit)).is_some();
        let out = self.systemctl_ok(&[
            "show",
            unit,
            "-p",
            "UnitFileState,ActiveState,SubState,MainPID,NRestarts,ExecMainCode,ExecMainStatus,ExecMainExitTimestampMonotonic",
        ])?;
        Ok(parse_show(&out.stdout, installed))
    }
}

/// Parses `systemctl show` `Key=value` lines.
pub fn parse_show(text: &str, installed: bool) -> UnitStatus {
    let mut s = UnitStatus {
        installed,
        ..Default::default()
    };
    let (mut code, mut status) = (0, None);
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "UnitFileState" => s.unit_file_state = v.to_string(),
            "ActiveState" => s.active_state = v.to_string(),
            "SubState" => s.sub_state = v.to_string(),
            "MainPID" => s.main_pid = v.parse().ok().filter(|&p: &u32| p > 0),
            "NRestarts" => s.restarts = v.parse().unwrap_or(0),
            "ExecMainCode" => code = v.parse().unwrap_or(0),
            "ExecMainStatus" => status = v.parse().ok(),
            "ExecMainExitTimestampMonotonic" => {
                s.last_exit_monotonic_us = v.parse().ok().filter(|&t: &u64| t > 0)
            }
            _ => {}
        }
    }
    // ExecMainCode is a CLD_* code: 1 exited, 2 killed, 3 dumped.
    match code {
        1 => s.last_exit_code = status,
        2 | 3 => s.last_exit_signal = status,
        _ => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Call, Recorder};

    fn spec() -> ServiceSpec {
        ServiceSpec {
            profile: Some("a".into()),
            binary: "/bin/openclaw".into(),
            home: "/home/u".into(),
            state_dir: "/home/u/.openclaw-a".into(),
            config_path: "/home/u/.openclaw-a/openclaw.json".into(),
            canonical_paths: true,
            port: 20000,
            ports: Default::default(),
            limits: Default::default(),
        }
    }

    fn manager_up(r: &mut Recorder) {
        r.answer(
            "systemctl --user show -p SystemState",
            CmdOutput {
                code: Some(0),
                stdout: "running\n".into(),
                stderr: String::new(),
            },
        );
    }

    #[test]
    fn install_writes_env_file_and_unit_then_reloads_enables_and_starts() {
        let mut r = Recorder::default();
        manager_up(&mut r);
        let mut sd = Systemd::new(&mut r, "/home/u/.config/systemd/user".into(), "u");
        let out = sd
            .install(&spec(), Some("TELEGRAM_BOT_TOKEN=1:x\n"), false)
            .unwrap();
        assert_eq!(out, Outcome::Installed);
        let unit_path = PathBuf::from("/home/u/.config/systemd/user/openclaw-gateway-a.service");
        assert_eq!(
            r.calls[1..3],
            [
                Call::Write("/home/u/.openclaw-a/gateway.systemd.env".into(), 0o600),
                Call::Write(unit_path.clone(), 0o644),
            ]
        );
        assert_eq!(
            r.commands(),
            vec![
                "systemctl --user show -p SystemState --value",
                "systemctl --user daemon-reload",
                "systemctl --user enable openclaw-gateway-a.service",
                "systemctl --user start openclaw-gateway-a.service",
            ]
        );
        assert!(
            r.files[&PathBuf::from("/home/u/.openclaw-a/gateway.systemd.env")]
                .contains("TELEGRAM_BOT_TOKEN=1:x")
        );
        assert!(
            !r.files[&unit_path].contains("1:x"),
            "secrets never in the unit"
        );
    }

    #[test]
    fn install_is_idempotent_and_refuses_drift_without_force() {
        let mut r = Recorder::default();
        for _ in 0..4 {
            manager_up(&mut r);
        }
        let mut sd = Systemd::new(&mut r, "/u".into(), "u");
        sd.install(&spec(), None, false).unwrap();
        assert_eq!(
            sd.install(&spec(), None, false).unwrap(),
            Outcome::AlreadyInstalled
        );
        let mut moved = spec();
        moved.port = 20111;
        assert!(matches!(
            sd.install(&moved, None, false),
            Err(Error::Drift(_))
        ));
        assert_eq!(sd.install(&moved, None, true).unwrap(), Outcome::Rewritten);
        assert!(
            r.commands()
                .last()
                .unwrap()
                .ends_with("restart openclaw-gateway-a.service")
        );
        assert!(r.files[&PathBuf::from("/u/openclaw-gateway-a.service")].contains("--port 20111"));
    }

    #[test]
    fn no_manager_is_a_clear_error_with_the_fix() {
        let mut r = Recorder::default();
        r.answer(
            "systemctl --user show",
            CmdOutput {
                code: Some(1),
                stdout: String::new(),
                stderr: "Failed to connect to bus: No medium found\n".into(),
            },
        );
        let mut sd = Systemd::new(&mut r, "/u".into(), "alice");
        let err = sd.install(&spec(), None, false).unwrap_err().to_string();
        assert!(err.contains("Failed to connect to bus"), "{err}");
        assert!(err.contains("sudo loginctl enable-linger alice"), "{err}");
        assert_eq!(r.commands().len(), 1, "nothing else was tried");
        assert!(r.files.is_empty(), "nothing was written");
    }

    #[test]
    fn uninstall_stops_disables_and_removes() {
        let mut r = Recorder::default();
        manager_up(&mut r);
        let mut sd = Systemd::new(&mut r, "/u".into(), "u");
        sd.install(&spec(), None, false).unwrap();
        assert!(sd.uninstall("openclaw-gateway-a.service").unwrap());
        assert!(!sd.uninstall("openclaw-gateway-a.service").unwrap());
        let cmds = r.commands();
        assert!(cmds.contains(&"systemctl --user stop openclaw-gateway-a.service".to_string()));
        assert!(cmds.contains(&"systemctl --user disable openclaw-gateway-a.service".to_string()));
        assert!(
            !r.files
                .contains_key(&PathBuf::from("/u/openclaw-gateway-a.service"))
        );
        assert!(
            r.files
                .contains_key(&PathBuf::from("/home/u/.openclaw-a/gateway.systemd.env"))
        );
    }

    #[test]
    fn show_output_is_parsed() {
        let s = parse_show(
            "UnitFileState=enabled\nActiveState=active\nSubState=running\nMainPID=42\nNRestarts=2\nExecMainCode=2\nExecMainStatus=9\n",
            true,
        );
        assert_eq!(
            (s.main_pid, s.restarts, s.last_exit_signal, s.last_exit_code),
            (Some(42), 2, Some(9), None)
        );
        let s = parse_show("MainPID=0\nExecMainCode=1\nExecMainStatus=78\n", true);
        assert_eq!((s.main_pid, s.last_exit_code), (None, Some(78)));
    }

    #[test]
    fn linger_warning_names_the_fix() {
        let mut r = Recorder::default();
        let dir = tempfile::tempdir().unwrap();
        let sd = Systemd::new(&mut r, "/u".into(), "bob");
        assert!(
            sd.linger_warning(dir.path())
                .unwrap()
                .contains("sudo loginctl enable-linger bob")
        );
        std::fs::write(dir.path().join("bob"), "").unwrap();
        assert!(sd.linger_warning(dir.path()).is_none());
    }
}
