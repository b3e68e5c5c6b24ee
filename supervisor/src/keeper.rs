//! The keeper: one small process per running profile (`openclawctl keep
//! --profile p`, spawned by `start`). It detaches from the terminal, takes
//! the profile's keeper lock (a second keeper exits at once), checks that
//! nobody else owns the state dir or port, then runs the gateway and keeps
//! it alive under [`RestartPolicy`], recording everything in the keeper
//! record ([`crate::supervision`]).
//!
//! Signals: SIGTERM/SIGINT stop (SIGTERM to the gateway's process group; a
//! second one sends SIGKILL), SIGHUP restarts now and resets the backoff
//! and crash-loop counters. When the gateway's leader exits, whatever is
//! left of its process group is killed: grandchildren never outlive it.
//! The gateway's stdin is a pipe from the keeper; if the keeper dies, the
//! gateway sees EOF and stops (`OPENCLAWCTL_LIFELINE`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::process::ExitStatus;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use openclaw_profiles::atomic::create_private_dir;
use openclaw_profiles::lock::{self, LockState, now_ms};
use openclaw_profiles::paths::{EnvSnapshot, ProfilePaths};
use openclaw_profiles::ports::is_port_free;
use openclaw_profiles::process::{describe, port_owner, same_process_alive};
use rand::RngExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::facts::configured_port;
use crate::launch::{gateway_command, log_path};
use crate::logfile::RotatingLog;
use crate::policy::RestartPolicy;
use crate::probe;
use crate::supervision::{
    Exit, Record, State, TALLY_LEN, keeper_lock_path, read_record, write_record,
};

/// Keeper exit code: another keeper already supervises the profile.
pub const EXIT_ALREADY_SUPERVISED: u8 = 3;
/// Health probes while running, and their timeout.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// Poll interval while the gateway starts.
const STARTING_POLL: Duration = Duration::from_millis(20);
/// Failed `/healthz` probes in a row that trigger a restart.
const HEALTH_FAILURES: u32 = 3;
/// A gateway that does not answer `/healthz` this long after spawning is
/// restarted.
const STARTUP_GRACE: Duration = Duration::from_secs(30);
/// SIGTERM → SIGKILL grace for restarts the keeper decides on its own.
const KILL_GRACE: Duration = Duration::from_secs(10);

enum Event {
    Exited(u64, ExitStatus),
    Signal(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    None,
    Stop,
    Restart,
    HealthRestart,
    /// Over its memory limit (the keeper's watchdog).
    MemoryKill,
}

/// The keeper's log: its own lines and the gateway's output, rotated.
#[derive(Clone)]
struct Log(Arc<Mutex<RotatingLog>>);

impl Log {
    fn say(&self, msg: &str) {
        let line = log_line(now_ms(), msg);
        if let Ok(mut l) = self.0.lock() {
            let _ = l.write_record(line.as_bytes());
        }
    }
    /// Copies `stream` into the log line by line on its own thread; `done`
    /// gets a message when the stream ends.
    fn pump(
        &self,
        stream: impl Read + Send + 'static,
        last_line: Option<Arc<Mutex<Option<String>>>>,
        done: mpsc::Sender<()>,
    ) {
        let log = self.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                if let Ok(mut l) = log.0.lock() {
                    let _ = l.write_record(&buf);
                }
                if let Some(last) = &last_line {
                    let text = String::from_utf8_lossy(&buf).trim().to_string();
                    if !text.is_empty()
                        && let Ok(mut slot) = last.lock()
                    {
                        *slot = Some(text);
                    }
                }
                buf.clear();
            }
            let _ = done.send(());
        });
    }
}

/// Waits (bounded) until `n` pumps reported the end of their streams.
fn drain_pumps(done: &mpsc::Receiver<()>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(2);
    for _ in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        if done.recv_timeout(left).is_err() {
            return;
        }
    }
}

/// One of openclawctl's own lines in a profile's log.
pub fn log_line(ms: u64, msg: &str) -> String {
    format!("{} openclawctl: {msg}\n", utc_timestamp(ms))
}

/// `2026-11-24T19:07:35.123Z` without a date crate.
pub fn utc_timestamp(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant), valid for the Unix era.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// Takes the keeper lock. Another keeper holds it for good; an
/// `openclawctl` probing whether a keeper runs holds it for microseconds,
/// so a refusal is retried for a moment before it counts.
fn take_keeper_lock(paths: &ProfilePaths) -> Result<Option<File>, String> {
    let deadline = Instant::now() + Duration::from_millis(200);
    loop {
        match lock::try_lock_file(&keeper_lock_path(paths)).map_err(|e| e.to_string())? {
            Some(f) => return Ok(Some(f)),
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            None => return Ok(None),
        }
    }
}

/// Closes every descriptor above 2 (the keeper has opened none yet).
fn close_inherited_descriptors() {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .or_else(|_| std::fs::read_dir("/dev/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd > 2)
                .collect()
        })
        .unwrap_or_default();
    // The directory's own descriptor is already closed here: EBADF, harmless.
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
}

/// True if `pid` runs in the process group that `leader` leads (our
/// gateway, or a process it started).
fn in_group_of(pid: u32, leader: u32) -> bool {
    pid == leader
        || nix::unistd::getpgid(Some(Pid::from_raw(pid as i32)))
            .is_ok_and(|g| g.as_raw() as u32 == leader)
}

fn signal_group(pid: u32, sig: Signal) {
    let _ = killpg(Pid::from_raw(pid as i32), sig);
}

/// Keeps profile `name`: as `openclawctl start` resolved it
/// ([`crate::launch::KeeperProfile`]), else as the registry knows it
/// (started by hand). Returns the keeper's exit code.
pub fn run_profile(name: &str) -> u8 {
    use crate::launch::{ENV_KEEPER_PROFILE, KeeperProfile};
    let mut env = EnvSnapshot::from_process();
    let given = KeeperProfile::from_env(&env, name);
    env.remove(ENV_KEEPER_PROFILE);
    if let Some(paths) = given {
        return run(&env, &paths);
    }
    let resolved = crate::context::Context::from_env(env)
        .and_then(|ctx| ctx.known_profile(name).map(|p| (ctx.env, p)));
    match resolved {
        Ok((env, paths)) => run(&env, &paths),
        Err(f) => {
            eprintln!("openclawctl keep: {}", f.message);
            f.code
        }
    }
}

/// Runs the keeper for `paths` until the gateway is stopped, gives up, or
/// cannot start. Returns the keeper's exit code.
pub fn run(env: &EnvSnapshot, paths: &ProfilePaths) -> u8 {
    // Descriptors our caller leaked to us (`openclawctl start 9>&1 | cat`)
    // would keep its pipes open for as long as we and the gateway live.
    close_inherited_descriptors();
    // Leave the terminal's session: terminal hangups and job control no
    // longer reach us (we are not a group leader, so this succeeds).
    let _ = nix::unistd::setsid();
    let _lock = match take_keeper_lock(paths) {
        Ok(Some(f)) => f,
        Ok(None) => return EXIT_ALREADY_SUPERVISED,
        Err(e) => {
            eprintln!("openclawctl keep: {e}");
            return 2;
        }
    };
    let previous = read_record(paths);
    let mut rec = Record {
        keeper_pid: std::process::id(),
        state: State::Starting,
        gateway_pid: None,
        gateway_started_at: None,
        port: 0,
        restarts: 0,
        last_exit: previous.as_ref().and_then(|p| p.last_exit.clone()),
        last_error: None,
        deaths: previous
            .as_ref()
            .map(|p| p.deaths.clone())
            .unwrap_or_default(),
        updated_at: now_ms(),
        limits: paths.limits,
    };
    let save = |rec: &mut Record| {
        rec.updated_at = now_ms();
        let _ = write_record(paths, rec);
    };
    let _ = create_private_dir(&paths.logs_dir());
    let (max_bytes, keep) = openclaw_profiles::logrotate::limits(env);
    let log = match RotatingLog::open(&log_path(paths), max_bytes, keep) {
        Ok(l) => Log(Arc::new(Mutex::new(l))),
        Err(e) => {
            rec.state = State::Failed;
            rec.last_error = Some(format!("cannot open {}: {e}", log_path(paths).display()));
            save(&mut rec);
            return 1;
        }
    };
    let refuse = |rec: &mut Record, why: String| {
        log.say(&why);
        rec.state = State::Conflict;
        rec.last_error = Some(why);
        save(rec);
        78
    };
    let port = match configured_port(paths) {
        Ok(p) => p,
        Err(e) => return refuse(&mut rec, e),
    };
    rec.port = port;
    save(&mut rec);
    let instance = openclaw_profiles::contract::instance_id(&paths.state_dir);
    if let Ok(home) = openclaw_profiles::paths::resolve_home(env)
        && let Some(why) = crate::service_cmd::keeper_must_refuse(env, &home, paths)
    {
        return refuse(&mut rec, why);
    }
    let orphan = previous.and_then(|p| p.gateway_pid);
    if let Err(why) = preflight(paths, port, orphan) {
        return refuse(&mut rec, why);
    }

    let (tx, rx) = mpsc::channel::<Event>();
    match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(mut signals) => {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    if tx.send(Event::Signal(sig)).is_err() {
                        break;
                    }
                }
            });
        }
        Err(e) => log.say(&format!("cannot install signal handlers: {e}")),
    }

    let enforcer = crate::enforce::Enforcer::prepare(env, paths);
    for note in &enforcer.notes {
        log.say(note);
    }
    if let Some(line) = enforcer.describe() {
        log.say(&line);
    }

    let policy = RestartPolicy::from_env(env);
    let mut consecutive: u32 = 0;
    let mut count_deaths_after = now_ms();
    let mut generation: u64 = 0;
    loop {
        generation += 1;
        // Every (re)start reads the config afresh: a changed gateway.port
        // takes effect, and a broken config stops us here.
        let port = match configured_port(paths) {
            Ok(p) => p,
            Err(e) => return refuse(&mut rec, e),
        };
        if port != rec.port {
            if let Err(why) = port_available(paths, port) {
                return refuse(&mut rec, why);
            }
            log.say(&format!("gateway.port changed from {} to {port}", rec.port));
            rec.port = port;
        }
        let ooms_before = enforcer.oom_count();
        let mut child = match gateway_command(env, paths, port, enforcer.cgroup.as_deref()).spawn()
        {
            Ok(c) => c,
            Err(e) => {
                let why = format!(
                    "cannot run the gateway binary: {e}; build it with `cargo build --release` or set OPENCLAWCTL_GATEWAY_BIN"
                );
                log.say(&why);
                rec.state = State::Failed;
                rec.last_error = Some(why);
                save(&mut rec);
                return 1;
            }
        };
        let pid = child.id();
        let started = Instant::now();
        rec.state = State::Starting;
        rec.gateway_pid = Some(pid);
        rec.gateway_started_at = Some(now_ms());
        save(&mut rec);
        log.say(&format!("started gateway pid {pid} on port {port}"));
        let last_line = Arc::new(Mutex::new(None));
        let (pump_done, pumps_done) = mpsc::channel();
        let mut pumps = 0;
        if let Some(out) = child.stdout.take() {
            log.pump(out, None, pump_done.clone());
            pumps += 1;
        }
        if let Some(err) = child.stderr.take() {
            log.pump(err, Some(last_line.clone()), pump_done);
            pumps += 1;
        }
        let lifeline = child.stdin.take();
        {
            let tx = tx.clone();
            let this = generation;
            std::thread::spawn(move || {
                if let Ok(status) = child.wait() {
                    let _ = tx.send(Event::Exited(this, status));
                }
            });
        }

        let mut intent = Intent::None;
        let mut term_sent: Option<Instant> = None;
        let mut grace = KILL_GRACE;
        let mut health_failures = 0;
        let mut over_memory: Option<String> = None;
        let status = loop {
            let timeout = if rec.state == State::Starting {
                STARTING_POLL
            } else {
                HEALTH_INTERVAL
            };
            match rx.recv_timeout(timeout) {
                Ok(Event::Exited(g, status)) if g == generation => break status,
                Ok(Event::Exited(..)) => {}
                Ok(Event::Signal(SIGHUP)) if intent == Intent::None => {
                    log.say("restart requested");
                    intent = Intent::Restart;
                    signal_group(pid, Signal::SIGTERM);
                    term_sent = Some(Instant::now());
                }
                Ok(Event::Signal(SIGTERM | SIGINT)) => {
                    if intent == Intent::Stop {
                        signal_group(pid, Signal::SIGKILL);
                    } else {
                        grace = crate::supervision::take_stop_grace(paths).unwrap_or(KILL_GRACE);
                        log.say(&format!(
                            "stop requested (SIGKILL after {} ms)",
                            grace.as_millis()
                        ));
                        intent = Intent::Stop;
                        signal_group(pid, Signal::SIGTERM);
                        signal_group(pid, Signal::SIGCONT);
                        term_sent = Some(Instant::now());
                    }
                }
                Ok(Event::Signal(_)) => {}
                Err(RecvTimeoutError::Disconnected) => unreachable!("the keeper holds a sender"),
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(at) = term_sent {
                        if at.elapsed() > grace {
                            signal_group(pid, Signal::SIGKILL);
                        }
                        continue;
                    }
                    if let Some(why) = enforcer.over_memory(pid) {
                        // As the kernel's OOM killer would: at once, all of it.
                        log.say(&why);
                        intent = Intent::MemoryKill;
                        signal_group(pid, Signal::SIGKILL);
                        term_sent = Some(Instant::now());
                        over_memory = Some(why);
                        continue;
                    }
                    let probe_timeout = if rec.state == State::Starting {
                        STARTING_POLL * 5
                    } else {
                        HEALTH_INTERVAL / 2
                    };
                    // Only our own gateway's answer counts: another gateway
                    // answering on this port is not this profile running.
                    let ours = probe::identify(port, probe_timeout)
                        .is_some_and(|id| id.instance == instance && in_group_of(id.pid, pid));
                    if ours {
                        health_failures = 0;
                        if rec.state == State::Starting {
                            rec.state = State::Running;
                            save(&mut rec);
                            log.say(&format!("gateway pid {pid} is healthy"));
                        }
                    } else {
                        let give_up = match rec.state {
                            State::Running => {
                                health_failures += 1;
                                health_failures >= HEALTH_FAILURES
                            }
                            _ => started.elapsed() > STARTUP_GRACE,
                        };
                        if give_up {
                            log.say(&format!(
                                "gateway pid {pid} failed its health checks; restarting it"
                            ));
                            intent = Intent::HealthRestart;
                            signal_group(pid, Signal::SIGTERM);
                            signal_group(pid, Signal::SIGCONT);
                            term_sent = Some(Instant::now());
                        }
                    }
                }
            }
        };
        drop(lifeline);
        // Whatever is left of the gateway's process group goes with it.
        signal_group(pid, Signal::SIGKILL);
        // Its last words are in the log (and in `last_line`) before we go on.
        drain_pumps(&pumps_done, pumps);
        let mut exit = Exit::from_status(status, now_ms());
        exit.reason = over_memory
            .map(|why| why.trim_end_matches("; killing it").to_string())
            .or_else(|| enforcer.oom_killed(ooms_before));
        log.say(&format!("gateway pid {pid} exited ({})", exit.describe()));
        rec.gateway_pid = None;
        rec.last_exit = Some(exit.clone());
        match intent {
            Intent::Stop => {
                rec.state = State::Stopped;
                save(&mut rec);
                return 0;
            }
            Intent::Restart => {
                consecutive = 0;
                count_deaths_after = now_ms();
                rec.restarts += 1;
                continue;
            }
            Intent::None | Intent::HealthRestart | Intent::MemoryKill => {}
        }
        if status.code() == Some(openclaw_profiles::contract::EX_CONFIG) {
            let line = last_line.lock().ok().and_then(|l| l.clone());
            rec.state = State::Conflict;
            rec.last_error = Some(line.unwrap_or_else(|| {
                "gateway exited with 78 (configuration or ownership conflict)".into()
            }));
            save(&mut rec);
            log.say("exit 78 is a configuration or ownership conflict: not restarting");
            return 78;
        }
        rec.deaths.push(exit.clone());
        if rec.deaths.len() > TALLY_LEN {
            rec.deaths.remove(0);
        }
        if started.elapsed() >= policy.stable_after {
            consecutive = 0;
        }
        consecutive += 1;
        let recent: Vec<u64> = rec
            .deaths
            .iter()
            .map(|d| d.at)
            .filter(|&t| t >= count_deaths_after)
            .collect();
        if policy.is_crash_loop(&recent, now_ms()) {
            let line = last_line.lock().ok().and_then(|l| l.clone());
            let why = format!(
                "crash loop: {} deaths within {}s (last: {}){}; fix the cause, then `openclawctl start --profile {}`",
                recent.len(),
                policy.crash_loop_window.as_secs(),
                exit.describe(),
                line.map_or(String::new(), |l| format!("; last output: {l}")),
                paths.profile
            );
            log.say(&why);
            rec.state = State::Failed;
            rec.last_error = Some(why);
            save(&mut rec);
            return 1;
        }
        let delay = policy.delay(consecutive, rand::rng().random::<f64>());
        rec.state = State::Backoff;
        save(&mut rec);
        log.say(&format!(
            "restarting in {} ms (restart {})",
            delay.as_millis(),
            rec.restarts + 1
        ));
        let until = Instant::now() + delay;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left) {
                Ok(Event::Signal(SIGTERM | SIGINT)) => {
                    rec.state = State::Stopped;
                    save(&mut rec);
                    log.say("stopped during backoff");
                    return 0;
                }
                Ok(Event::Signal(SIGHUP)) => {
                    consecutive = 0;
                    count_deaths_after = now_ms();
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        rec.restarts += 1;
    }
}

/// Refuses to start when someone else owns the state dir or the port,
/// naming the owner. A gateway of ours left by a dead keeper (`orphan`) is
/// given a moment to follow its lifeline, then stopped.
fn preflight(paths: &ProfilePaths, port: u16, orphan: Option<u32>) -> Result<(), String> {
    let lock_path = paths.state_lock_path();
    let held = || match lock::inspect(&lock_path) {
        Ok(LockState::Held(o)) => Some(o),
        _ => None,
    };
    if let Some(Some(owner)) = held()
        && Some(owner.pid) == orphan
        && same_process_alive(owner.pid, owner.start_time)
    {
        signal_group(owner.pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while held().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    match held() {
        Some(Some(owner)) => {
            return Err(format!(
                "state dir {} is owned by {} (profile `{}`, not started by openclawctl); stop it first",
                paths.state_dir.display(),
                describe(owner.pid),
                owner.profile.as_deref().unwrap_or("?"),
            ));
        }
        Some(None) => {
            return Err(format!(
                "state dir {} is locked by a live process that left no owner record",
                paths.state_dir.display()
            ));
        }
        None => {}
    }
    port_available(paths, port)
}

/// Refuses a port someone else listens on, naming them.
fn port_available(paths: &ProfilePaths, port: u16) -> Result<(), String> {
    if is_port_free(port) {
        return Ok(());
    }
    // A gateway names its profile when asked; anything else by its pid.
    let who = probe::identify(port, Duration::from_millis(500)).map_or_else(
        || port_owner(port).map_or_else(|| "another process".to_string(), describe),
        |id| id.describe(),
    );
    Err(format!(
        "port {port} is in use by {who}; stop it or give the profile another port (gateway.port in {})",
        paths.config_path.display()
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_utc_iso8601() {
        assert_eq!(super::utc_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::utc_timestamp(1_795_547_834_238),
            "2026-11-24T19:17:14.238Z"
        );
        assert_eq!(
            super::utc_timestamp(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
