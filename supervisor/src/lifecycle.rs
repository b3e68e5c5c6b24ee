//! `openclawctl start` and `stop`.
//!
//! `start` refuses before spawning anything when the profile's state dir is
//! owned by a live process or its port is taken, spawns the gateway
//! detached ([`crate::launch`]) and waits for `/readyz`. `stop` signals the
//! lock holder's whole process group with SIGTERM, waits for the lock to be
//! released and the process to exit, and escalates to SIGKILL after the
//! timeout.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid};
use openclaw_profiles::lock::{self, LockState};
use openclaw_profiles::paths::ProfilePaths;
use openclaw_profiles::ports::is_port_free;
use openclaw_profiles::process::{pid_alive, same_process_alive};

use crate::context::Context;
use crate::facts::{self, Holder};
use crate::launch::{log_path, spawn_gateway, tail_lines};
use crate::{CmdResult, Failure, probe};

/// How often waits poll.
const POLL: Duration = Duration::from_millis(50);
/// Log lines shown when a start fails.
const LOG_LINES_ON_FAILURE: usize = 20;

/// Options of `start`.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// How long to wait for `/readyz`.
    pub wait: Duration,
    /// Return right after spawning.
    pub no_wait: bool,
}

/// `openclawctl start` for each named profile, in order.
pub fn start(ctx: &Context, names: &[String], opts: &StartOptions) -> CmdResult {
    let mut first_failure = None;
    for name in names {
        if let Err(f) = start_one(ctx, name, opts) {
            eprintln!("openclawctl: {}", f.message);
            first_failure.get_or_insert(Failure {
                code: f.code,
                message: String::new(),
            });
        }
    }
    first_failure.map_or(Ok(()), Err)
}

fn start_one(ctx: &Context, name: &str, opts: &StartOptions) -> CmdResult {
    let paths = ctx.known_profile(name)?;
    let name = paths.profile.as_str();
    let facts = facts::gather(&paths);
    match &facts.holder {
        Holder::Known(o) if facts.live => {
            println!(
                "profile `{name}` is already running (pid {}, port {})",
                o.pid,
                facts.serving_port().map_or("?".into(), |p| p.to_string())
            );
            return Ok(());
        }
        Holder::Known(o) => {
            return Err(Failure::conflict(format!(
                "cannot start profile `{name}`: its state dir {} is owned by pid {} (profile `{}`, {}), which does not answer /healthz{}; stop it with `openclawctl stop --profile {name}`",
                paths.state_dir.display(),
                o.pid,
                o.profile.as_deref().unwrap_or("?"),
                if facts.launched_by_us {
                    "started by openclawctl"
                } else {
                    "not started by openclawctl"
                },
                o.port.map_or(String::new(), |p| format!(" on port {p}")),
            )));
        }
        Holder::Unknown => {
            return Err(Failure::conflict(format!(
                "cannot start profile `{name}`: its state dir {} is locked by a live process that left no owner record",
                paths.state_dir.display()
            )));
        }
        Holder::None => {}
    }
    let port = facts
        .port
        .map_err(|e| Failure::conflict(format!("cannot start profile `{name}`: {e}")))?;
    if !is_port_free(port) {
        return Err(Failure::conflict(format!(
            "cannot start profile `{name}`: port {port} is already in use by another process; stop that process or give the profile another port (gateway.port in {})",
            paths.config_path.display()
        )));
    }
    let mut child = spawn_gateway(&ctx.env, &paths, port)?;
    let pid = child.id();
    if opts.no_wait {
        println!("starting profile `{name}` (pid {pid}, port {port})");
        return Ok(());
    }
    let mut progress = Progress::new(name);
    let deadline = Instant::now() + opts.wait;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            progress.finish();
            let lines = tail_lines(&log_path(&paths), LOG_LINES_ON_FAILURE).join("\n");
            let msg = format!(
                "gateway of profile `{name}` exited during start ({status}); last log lines:\n{lines}"
            );
            return Err(match status.code() {
                Some(78) => Failure::conflict(msg),
                _ => Failure::problem(msg),
            });
        }
        if probe::is_ready(port, facts::PROBE_TIMEOUT) {
            progress.finish();
            println!("started profile `{name}` (pid {pid}, port {port})");
            return Ok(());
        }
        if Instant::now() >= deadline {
            progress.finish();
            let lines = tail_lines(&log_path(&paths), LOG_LINES_ON_FAILURE).join("\n");
            // Do not leave a half-started gateway behind.
            let _ = terminate(pid, Duration::from_secs(5));
            let _ = child.wait();
            return Err(Failure::problem(format!(
                "profile `{name}` did not become ready within {}s and was stopped; last log lines:\n{lines}",
                opts.wait.as_secs()
            )));
        }
        progress.tick();
        std::thread::sleep(POLL);
    }
}

/// A dot per second on a terminal's stderr while waiting.
struct Progress {
    tty: bool,
    started: Instant,
    dots: u64,
}

impl Progress {
    fn new(name: &str) -> Self {
        let tty = std::io::stderr().is_terminal();
        if tty {
            eprint!("starting profile `{name}` ");
        }
        Self {
            tty,
            started: Instant::now(),
            dots: 0,
        }
    }
    fn tick(&mut self) {
        let secs = self.started.elapsed().as_secs();
        if self.tty && secs > self.dots {
            self.dots = secs;
            eprint!(".");
            let _ = std::io::stderr().flush();
        }
    }
    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

/// `openclawctl stop` for each named profile.
pub fn stop(ctx: &Context, names: &[String], timeout: Duration) -> CmdResult {
    let mut first_failure = None;
    for name in names {
        let result = ctx
            .known_profile(name)
            .and_then(|paths| stop_one(&paths, timeout));
        if let Err(f) = result {
            eprintln!("openclawctl: {}", f.message);
            first_failure.get_or_insert(Failure {
                code: f.code,
                message: String::new(),
            });
        }
    }
    first_failure.map_or(Ok(()), Err)
}

fn stop_one(paths: &ProfilePaths, timeout: Duration) -> CmdResult {
    let name = paths.profile.as_str();
    let lock_path = paths.state_lock_path();
    let owner = match lock::inspect(&lock_path).map_err(|e| Failure::problem(e.to_string()))? {
        LockState::Free => {
            println!("profile `{name}` is not running");
            return Ok(());
        }
        LockState::Held(None) => {
            return Err(Failure::problem(format!(
                "profile `{name}`: the state lock {} is held by a process that left no owner record; find it with `fuser {}`",
                lock_path.display(),
                lock_path.display()
            )));
        }
        LockState::Held(Some(o)) => o,
    };
    if !same_process_alive(owner.pid, owner.start_time) {
        return Err(Failure::problem(format!(
            "profile `{name}`: the state lock is held but its recorded owner (pid {}) is gone; the lock is held by another process",
            owner.pid
        )));
    }
    let how = terminate(owner.pid, timeout).map_err(Failure::problem)?;
    wait_until(Duration::from_secs(5), || {
        lock::inspect(&lock_path).is_ok_and(|s| s == LockState::Free)
    });
    println!("stopped profile `{name}` (pid {}{})", owner.pid, how);
    Ok(())
}

/// Stops `pid` and its process group: SIGTERM, up to `grace` for it to
/// exit, then SIGKILL. Returns how it ended, for the message.
pub fn terminate(pid: u32, grace: Duration) -> Result<&'static str, String> {
    let target = Pid::from_raw(pid as i32);
    // A gateway we started leads its own group; one started by hand may not.
    let group = getpgid(Some(target)).ok().filter(|g| *g == target);
    let send = |sig: Signal| match group {
        Some(g) => killpg(g, sig),
        None => kill(target, sig),
    };
    match send(Signal::SIGTERM) {
        Ok(()) => {}
        Err(nix::errno::Errno::ESRCH) => return Ok(""),
        Err(e) => return Err(format!("cannot signal pid {pid}: {e}")),
    }
    if wait_until(grace, || {
        !pid_alive(pid) && group.is_none_or(|g| !group_alive(g))
    }) {
        return Ok("");
    }
    let _ = send(Signal::SIGKILL);
    if wait_until(Duration::from_secs(5), || !pid_alive(pid)) {
        Ok(", killed after the stop timeout")
    } else {
        Err(format!("pid {pid} survived SIGKILL"))
    }
}

/// True if any non-zombie process is in group `g`.
fn group_alive(g: Pid) -> bool {
    match killpg(g, None) {
        Err(_) => false,
        Ok(()) => group_has_live_member(g),
    }
}

/// killpg(0) also succeeds for groups of zombies only; look closer.
fn group_has_live_member(g: Pid) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields[0] = state, fields[2] = pgrp
        fields.len() > 2 && fields[0] != "Z" && fields[2] == g.as_raw().to_string()
    })
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}
