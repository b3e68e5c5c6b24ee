//! A throwaway home for one test: `HOME`, state dirs and `openclawctl`'s
//! registry all live in a temp dir, the environment handed to children is
//! scrubbed of the machine's `OPENCLAW_*` variables, and dropping the home
//! kills every gateway that still holds a state lock inside it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use openclaw_profiles::lock::{self, LockState};

/// A temp home; see the module docs.
#[derive(Debug)]
pub struct TestHome {
    dir: tempfile::TempDir,
    home: PathBuf,
    extra_env: Vec<(String, String)>,
}

impl Default for TestHome {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHome {
    /// A new, empty home.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("openclaw-test-")
            .tempdir()
            .expect("tempdir");
        Self {
            home: dir.path().to_path_buf(),
            dir,
            extra_env: Vec::new(),
        }
    }

    /// A home at `<base>/home` inside a new temp `base` (the layout of
    /// `scripts/systemd-user-up BASE`).
    pub fn under_base() -> Self {
        let mut h = Self::new();
        h.home = h.dir.path().join("home");
        std::fs::create_dir_all(&h.home).expect("create home");
        h
    }

    /// The temp dir holding everything (the home itself unless
    /// [`TestHome::under_base`]).
    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    /// Sets a variable for every command this home runs.
    pub fn set_env(&mut self, key: &str, value: impl Into<String>) {
        self.extra_env.push((key.to_string(), value.into()));
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        &self.home
    }

    /// `<home>/.openclaw-<name>`.
    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.path().join(format!(".openclaw-{name}"))
    }

    /// A command with this home and nothing of the machine's OpenClaw env.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("OPENCLAW_") || k.starts_with("OPENCLAWCTL_") || k == "XDG_CONFIG_HOME"
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.path()).current_dir(self.path());
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `openclawctl args...` to completion.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.command(crate::bins::openclawctl())
            .args(args)
            .output()
            .expect("run openclawctl")
    }

    /// Live processes started in this home (keepers, gateways, children).
    pub fn processes(&self) -> Vec<u32> {
        processes_of_home(&self.home)
    }

    /// Pids holding a state lock of any profile dir in this home.
    pub fn lock_holders(&self) -> Vec<u32> {
        let Ok(dir) = std::fs::read_dir(self.path()) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".openclaw"))
            .filter_map(|e| {
                let tmp = e.path().join("tmp");
                let uid_dir = std::fs::read_dir(tmp).ok()?.flatten().next()?.path();
                match lock::inspect(&uid_dir.join("gateway.state.lock")) {
                    Ok(LockState::Held(Some(o))) => Some(o.pid),
                    _ => None,
                }
            })
            .collect()
    }
}

/// Pids of live processes whose environment holds `HOME=<home>`: every
/// process a test started in this home (keepers, gateways, their children).
fn processes_of_home(home: &Path) -> Vec<u32> {
    let needle = format!("HOME={}", home.display());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| openclaw_profiles::process::pid_alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

impl Drop for TestHome {
    fn drop(&mut self) {
        // Keepers restart gateways they lose, so kill everything of this
        // home until nothing is left (bounded).
        for _ in 0..100 {
            let pids = processes_of_home(&self.home);
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// stdout of an output as a string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr of an output as a string.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A child process the test spawned itself (e.g. `openclaw gateway`), in its
/// own process group; dropping it kills the group and reaps the child.
#[derive(Debug)]
pub struct Running {
    /// The child.
    pub child: std::process::Child,
}

impl Running {
    /// Spawns `cmd` in a new process group.
    pub fn spawn(mut cmd: Command) -> Self {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        Self {
            child: cmd.spawn().expect("spawn child"),
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to the child's group.
    pub fn signal(&self, sig: Signal) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), sig);
    }

    /// Waits for exit with a deadline; panics after `limit`.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "child did not exit within {limit:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Running {
    /// Waits for exit with a deadline and collects what the child wrote to
    /// its piped stdout and stderr.
    pub fn output(mut self, limit: std::time::Duration) -> std::process::Output {
        use std::io::Read;
        let status = self.wait_exit(limit);
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_end(&mut stdout);
        }
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_end(&mut stderr);
        }
        std::process::Output {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}
