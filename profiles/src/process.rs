//! Facts about other processes, read from the OS: liveness and start time.

use std::collections::HashMap;

use nix::sys::signal::kill;
use nix::unistd::Pid;

/// True if a process with this pid exists and is not a zombie (it may
/// belong to another user). A zombie has exited and only waits for its
/// parent to reap it; it holds no locks, ports or files.
pub fn pid_alive(pid: u32) -> bool {
    if is_zombie(pid) {
        return false;
    }
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    match kill(Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// True if `pid` is a zombie (Linux `/proc/<pid>/stat` state `Z`).
pub fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|s| s == "Z")
        })
        .unwrap_or(false)
}

/// The process's start time in clock ticks since boot (Linux
/// `/proc/<pid>/stat` field 22), used to tell a recycled pid from the
/// process that wrote a record. `None` where unavailable.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip to
    // the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// True if `pid` is alive and, when `expected_start` is known, is still the
/// same process (not a recycled pid).
pub fn same_process_alive(pid: u32, expected_start: Option<u64>) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    match (expected_start, start_time(pid)) {
        (Some(want), Some(got)) => want == got,
        _ => true,
    }
}

/// The command line of `pid`, arguments joined by spaces (Linux), e.g.
/// `openclaw --profile a gateway run --port 18789`.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `pid 1234 (cmdline)` for messages that name an owner.
pub fn describe(pid: u32) -> String {
    match cmdline(pid) {
        Some(c) => format!("pid {pid} ({c})"),
        None => format!("pid {pid}"),
    }
}

/// Listening TCP sockets of this host (`/proc/net/tcp{,6}`, state `0A`),
/// as `socket:[inode]` → port.
fn listening_sockets() -> HashMap<String, u16> {
    let mut by_inode = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is f[1], st is f[3] (0A = LISTEN), inode is f[9]
            if f.len() > 9 && f[3] == "0A" {
                let port = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|h| u16::from_str_radix(h, 16).ok());
                if let Some(port) = port {
                    by_inode.insert(format!("socket:[{}]", f[9]), port);
                }
            }
        }
    }
    by_inode
}

/// Walks every process's descriptors once, calling `found(pid, port)` for
/// each descriptor that is one of `sockets`; stops when `found` says so.
fn walk_socket_holders(sockets: &HashMap<String, u16>, mut found: impl FnMut(u32, u16) -> bool) {
    if sockets.is_empty() {
        return;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && let Some(&port) = target.to_str().and_then(|t| sockets.get(t))
                && found(pid, port)
            {
                return;
            }
        }
    }
}

/// The pid of a process listening on TCP `port` (any local address), found
/// through `/proc/net/tcp{,6}` and the socket inodes in `/proc/<pid>/fd`
/// (Linux; `None` elsewhere or when the owner is not visible to us).
pub fn port_owner(port: u16) -> Option<u32> {
    let mut sockets = listening_sockets();
    sockets.retain(|_, p| *p == port);
    let mut owner = None;
    walk_socket_holders(&sockets, |pid, _| {
        owner = Some(pid);
        true
    });
    owner
}

/// Every listening TCP port of this host and the pid that holds it, read
/// at once: the socket tables parsed once and every process's descriptors
/// walked once, so n ports cost one scan, not n.
#[derive(Debug, Default)]
pub struct Listeners(HashMap<u16, u32>);

impl Listeners {
    /// Reads the tables now (empty where there is no `/proc`).
    pub fn read() -> Self {
        let mut owners = HashMap::new();
        walk_socket_holders(&listening_sockets(), |pid, port| {
            owners.entry(port).or_insert(pid);
            false
        });
        Self(owners)
    }

    /// Who listens on `port`, if anyone did when the tables were read.
    pub fn owner(&self, port: u16) -> Option<u32> {
        self.0.get(&port).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_owner_of_a_listening_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(port_owner(port), Some(std::process::id()));
        assert!(describe(std::process::id()).starts_with(&format!("pid {} (", std::process::id())));
        assert_eq!(Listeners::read().owner(port), Some(std::process::id()));
        drop(l);
        assert_eq!(port_owner(port), None);
        assert_eq!(Listeners::read().owner(port), None);
    }

    #[test]
    fn own_process_is_alive_with_a_start_time() {
        let me = std::process::id();
        assert!(pid_alive(me));
        let st = start_time(me);
        assert!(st.is_some());
        assert!(same_process_alive(me, st));
        assert!(!same_process_alive(me, st.map(|s| s + 1)));
    }

    #[test]
    fn unreaped_exited_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_zombie(pid) {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!pid_alive(pid));
        child.wait().unwrap();
    }

    #[test]
    fn reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
        assert!(!pid_alive(0));
    }
}
