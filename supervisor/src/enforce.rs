//! How a keeper holds its gateway to the profile's limits
//! ([`openclaw_profiles::limits`]), where systemd is not there to do it:
//!
//! - `nofile` is an rlimit, always: the keeper sets its own soft and hard
//!   `RLIMIT_NOFILE` before spawning, and the gateway inherits it.
//! - `memory-max`, `cpu-quota` and `tasks-max` go to a cgroup v2 sub-group
//!   of the tenant (`<root>/openclaw-<profile>`: `memory.max` with
//!   `memory.oom.group`, `cpu.max`, `pids.max`) when the keeper runs inside
//!   a delegated cgroup that offers those controllers. The root is
//!   `$OPENCLAWCTL_CGROUP_ROOT`, else the cgroup the keeper was started in;
//!   the keeper first steps into the leaf `<root>/openclawctl` (a cgroup
//!   with sub-groups cannot hold processes itself).
//! - Without such a cgroup, `memory-max` is enforced by a watchdog: every
//!   health tick the keeper sums the resident memory of the gateway's
//!   process tree (`/proc/<pid>/statm`, children through
//!   `/proc/<pid>/task/<tid>/children`) and kills the tree when it is over,
//!   as the kernel would; `cpu-quota` and `tasks-max` are then not
//!   enforced, and the keeper's log says so.
//!
//! Either way a gateway killed for its memory is restarted under the
//! normal restart policy; its neighbours are not touched.

use std::io::Write;
use std::path::{Path, PathBuf};

use openclaw_profiles::limits::{Limits, format_size};
use openclaw_profiles::paths::{EnvSnapshot, ProfilePaths};

/// `OPENCLAWCTL_CGROUP_ROOT`: a delegated cgroup v2 directory under which
/// keepers create their tenants' groups (default: the keeper's own cgroup).
pub const ENV_CGROUP_ROOT: &str = "OPENCLAWCTL_CGROUP_ROOT";

/// The leaf keepers move into so that their cgroup can hold sub-groups.
const KEEPER_LEAF: &str = "openclawctl";

/// The limits of one tenant as the keeper applies them.
#[derive(Debug)]
pub struct Enforcer {
    limits: Limits,
    /// The tenant's cgroup v2 directory, when one was made.
    pub cgroup: Option<PathBuf>,
    /// What could not be applied, and why (for the log).
    pub notes: Vec<String>,
}

impl Enforcer {
    /// Applies what can be applied before the first spawn: the rlimit, the
    /// cgroup. Never fails: what cannot be done becomes a note.
    pub fn prepare(env: &EnvSnapshot, paths: &ProfilePaths) -> Self {
        let limits = paths.limits;
        let mut notes = Vec::new();
        if let Some(n) = limits.nofile
            && let Err(e) = set_nofile(n)
        {
            notes.push(e);
        }
        let mut cgroup = None;
        let controllers = controllers(&limits);
        if !controllers.is_empty() {
            match tenant_cgroup(env, paths.profile.as_str(), &limits) {
                Ok(dir) => cgroup = Some(dir),
                Err(why) => {
                    // What only a cgroup can hold (memory has the watchdog).
                    let lost: Vec<&str> = controllers
                        .iter()
                        .filter(|c| c.0 != "memory")
                        .map(|c| c.1)
                        .collect();
                    notes.push(format!(
                        "no cgroup for the limits: {why}; {}{}",
                        if limits.memory_max.is_some() {
                            "memory-max is enforced by the keeper's watchdog (the tree's resident memory, checked every second)"
                        } else {
                            "nothing enforces them"
                        },
                        if lost.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "; {} not enforced (install the profile as a systemd service, or run openclawctl in a delegated cgroup: `systemd-run --user --scope -p Delegate=yes openclawctl start ...`)",
                                lost.join(" and ")
                            )
                        }
                    ));
                }
            }
        }
        Self {
            limits,
            cgroup,
            notes,
        }
    }

    /// The memory limit the keeper's watchdog holds: `memory-max` when no
    /// cgroup does.
    fn watchdog(&self) -> Option<u64> {
        self.limits.memory_max.filter(|_| self.cgroup.is_none())
    }

    /// One line for the log: what holds the tenant.
    pub fn describe(&self) -> Option<String> {
        if self.limits.is_empty() {
            return None;
        }
        let mut by = Vec::new();
        if let Some(dir) = &self.cgroup {
            by.push(format!("cgroup {}", dir.display()));
        }
        if self.watchdog().is_some() {
            by.push("memory-max by the keeper's watchdog".into());
        }
        if self.limits.nofile.is_some() {
            by.push("nofile by rlimit".into());
        }
        Some(format!(
            "limits {}: {}",
            self.limits.summary(),
            if by.is_empty() {
                "none applied".to_string()
            } else {
                by.join(", ")
            }
        ))
    }

    /// The watchdog's check: `Some(why)` when the tree of `pid` is over
    /// the memory limit and must be killed.
    pub fn over_memory(&self, pid: u32) -> Option<String> {
        let max = self.watchdog()?;
        let used = tree_rss(pid);
        (used > max).then(|| {
            format!(
                "memory-max {} exceeded: the gateway's process tree holds {} resident; killing it",
                format_size(max),
                crate::status::format_bytes(used)
            )
        })
    }

    /// After a gateway died: the kernel's OOM kills in the tenant's cgroup
    /// since the last call, as a reason.
    pub fn oom_killed(&self, before: u64) -> Option<String> {
        let dir = self.cgroup.as_ref()?;
        let now = oom_kills(dir);
        (now > before).then(|| {
            format!(
                "memory-max {} exceeded: the kernel killed the tenant's cgroup",
                self.limits.memory_max.map(format_size).unwrap_or_default()
            )
        })
    }

    /// `oom_group_kill` so far in the tenant's cgroup (0 without one).
    pub fn oom_count(&self) -> u64 {
        self.cgroup.as_deref().map_or(0, oom_kills)
    }
}

/// The cgroup v2 controllers `limits` need, with the limit each holds
/// (all but `nofile`, an rlimit).
fn controllers(limits: &Limits) -> Vec<(&'static str, &'static str)> {
    [
        (limits.memory_max.is_some(), ("memory", "memory-max")),
        (limits.cpu_quota.is_some(), ("cpu", "cpu-quota")),
        (limits.tasks_max.is_some(), ("pids", "tasks-max")),
    ]
    .into_iter()
    .filter_map(|(set, c)| set.then_some(c))
    .collect()
}

/// True when a limit needs a cgroup (all but `nofile`).
pub fn needs_cgroup(limits: &Limits) -> bool {
    !controllers(limits).is_empty()
}

/// Moves this process into the leaf `<own cgroup>/openclawctl` when its
/// cgroup v2 is delegated (offers the memory controller and lets us
/// write), so that the keepers it spawns start there and the cgroup itself
/// can enable controllers for tenant groups. Quietly does nothing
/// otherwise: the keeper reports what it could not do.
pub fn step_into_leaf(env: &EnvSnapshot) {
    if env.get(ENV_CGROUP_ROOT).is_some() {
        return;
    }
    let Ok(own) = own_cgroup() else { return };
    if own.file_name().is_some_and(|n| n == KEEPER_LEAF) {
        return;
    }
    let offered = std::fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
    if !offered.split_whitespace().any(|c| c == "memory") {
        return;
    }
    let leaf = own.join(KEEPER_LEAF);
    if std::fs::create_dir_all(&leaf).is_ok() {
        let _ = std::fs::write(leaf.join("cgroup.procs"), std::process::id().to_string());
    }
}

fn set_nofile(n: u64) -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    match setrlimit(Resource::RLIMIT_NOFILE, n, n) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(n), hard.min(n));
            Err(format!(
                "nofile {n} is above this user's hard limit {hard} ({e}); the gateway runs with {}",
                hard.min(n)
            ))
        }
    }
}

/// Resident bytes of `pid` and all its descendants.
pub fn tree_rss(pid: u32) -> u64 {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as u64);
    descendants(pid)
        .into_iter()
        .filter_map(|p| {
            let statm = std::fs::read_to_string(format!("/proc/{p}/statm")).ok()?;
            statm.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum::<u64>()
        * page
}

/// `pid` and every descendant, through the kernel's children lists (no
/// scan of `/proc`: the cost follows the tree, not the host).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() && out.len() < 4096 {
        let p = out[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let children =
                    std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                out.extend(
                    children
                        .split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
        i += 1;
    }
    out
}

/// Threads of `pid` and its descendants.
pub fn tree_tasks(pid: u32) -> u32 {
    descendants(pid)
        .into_iter()
        .map(|p| std::fs::read_dir(format!("/proc/{p}/task")).map_or(0, |d| d.count() as u32))
        .sum()
}

/// Open descriptors of `pid`.
pub fn open_files(pid: u32) -> Option<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count() as u64)
}

fn oom_kills(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("memory.events"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("oom_group_kill ")
                .or(l.strip_prefix("oom_kill "))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The cgroup v2 directory of this process: its `0::` line in
/// `/proc/self/cgroup` under the `cgroup2` mount of `/proc/self/mountinfo`.
fn own_cgroup() -> Result<PathBuf, String> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    own_cgroup_from(&cgroup, &mountinfo)
}

fn own_cgroup_from(cgroup: &str, mountinfo: &str) -> Result<PathBuf, String> {
    let rel = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("this process is in no cgroup v2 hierarchy")?;
    // mountinfo: id parent major:minor root mount-point options ... - fstype source ...
    let mount = mountinfo
        .lines()
        .find(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|t| t.starts_with("cgroup2 "))
        })
        .and_then(|l| l.split_whitespace().nth(4))
        .ok_or("no cgroup2 filesystem is mounted")?;
    Ok(Path::new(mount).join(rel.trim_start_matches('/')))
}

/// Creates (or reuses) `<root>/openclaw-<profile>` with the limits written.
fn tenant_cgroup(env: &EnvSnapshot, profile: &str, limits: &Limits) -> Result<PathBuf, String> {
    let root = match env.get(ENV_CGROUP_ROOT) {
        Some(r) => PathBuf::from(r),
        None => {
            let own = own_cgroup()?;
            if own.file_name().is_some_and(|n| n == KEEPER_LEAF) {
                own.parent().map(Path::to_path_buf).unwrap_or(own)
            } else {
                own
            }
        }
    };
    make_tenant_cgroup(&root, profile, limits, std::process::id())
}

fn make_tenant_cgroup(
    root: &Path,
    profile: &str,
    limits: &Limits,
    me: u32,
) -> Result<PathBuf, String> {
    let offered = std::fs::read_to_string(root.join("cgroup.controllers")).map_err(|e| {
        format!(
            "cannot read {}: {e}",
            root.join("cgroup.controllers").display()
        )
    })?;
    let needed: Vec<&str> = controllers(limits).iter().map(|c| c.0).collect();
    let offered: Vec<&str> = offered.split_whitespace().collect();
    if let Some(missing) = needed.iter().find(|c| !offered.contains(c)) {
        return Err(format!(
            "the cgroup {} does not offer the {missing} controller (not delegated to this user, or bound to cgroup v1)",
            root.display()
        ));
    }
    let write = |file: PathBuf, text: &str| -> Result<(), String> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("cannot write {text:?} to {}: {e}", file.display()))
    };
    // Step into the keepers' leaf: a cgroup with sub-groups holds no
    // processes of its own.
    let leaf = root.join(KEEPER_LEAF);
    std::fs::create_dir_all(&leaf).map_err(|e| format!("cannot create {}: {e}", leaf.display()))?;
    write(leaf.join("cgroup.procs"), &me.to_string())?;
    let enable: Vec<String> = needed.iter().map(|c| format!("+{c}")).collect();
    write(root.join("cgroup.subtree_control"), &enable.join(" ")).map_err(|e| {
        format!(
            "{e} (other processes live in {}: run openclawctl in a cgroup of its own)",
            root.display()
        )
    })?;
    let dir = root.join(format!("openclaw-{profile}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if let Some(m) = limits.memory_max {
        write(dir.join("memory.max"), &m.to_string())?;
        // The whole tenant goes, not a random thread of it.
        write(dir.join("memory.oom.group"), "1")?;
        let _ = write(dir.join("memory.swap.max"), "0");
    }
    if let Some(cpu) = limits.cpu_max() {
        write(dir.join("cpu.max"), &cpu)?;
    }
    if let Some(t) = limits.tasks_max {
        write(dir.join("pids.max"), &t.to_string())?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openclaw_profiles::limits::Kind;

    #[test]
    fn the_cgroup2_mount_and_path_are_found() {
        let mountinfo = "24 30 0:22 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                         31 30 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            own_cgroup_from("4:memory:/x\n0::/user.slice/app.scope\n", mountinfo).unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified/user.slice/app.scope")
        );
        assert!(
            own_cgroup_from("4:memory:/x\n", mountinfo)
                .unwrap_err()
                .contains("no cgroup v2")
        );
    }

    /// The files a delegated cgroup v2 root offers, as plain files: what
    /// the keeper writes, and where, is checked (the kernel's behaviour
    /// is not; this machine's memory controller is on cgroup v1).
    #[test]
    fn a_tenant_group_gets_the_limit_files() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
        std::fs::create_dir(root.path().join(KEEPER_LEAF)).unwrap();
        std::fs::write(root.path().join(KEEPER_LEAF).join("cgroup.procs"), "").unwrap();
        let dir = root.path().join("openclaw-a");
        std::fs::create_dir(&dir).unwrap();
        for f in [
            "memory.max",
            "memory.oom.group",
            "memory.swap.max",
            "cpu.max",
            "pids.max",
        ] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let mut l = Limits::default();
        for (k, v) in [
            (Kind::Memory, "64M"),
            (Kind::Cpu, "50%"),
            (Kind::Tasks, "128"),
        ] {
            l.set(k, v).unwrap();
        }
        assert_eq!(make_tenant_cgroup(root.path(), "a", &l, 42).unwrap(), dir);
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(root.path().join("openclawctl/cgroup.procs")), "42");
        assert_eq!(
            read(root.path().join("cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        assert_eq!(read(dir.join("memory.max")), "67108864");
        assert_eq!(read(dir.join("memory.oom.group")), "1");
        assert_eq!(read(dir.join("cpu.max")), "50000 100000");
        assert_eq!(read(dir.join("pids.max")), "128");
        // A root without the memory controller is refused with the reason.
        std::fs::write(root.path().join("cgroup.controllers"), "cpu pids\n").unwrap();
        let err = make_tenant_cgroup(root.path(), "a", &l, 42).unwrap_err();
        assert!(
            err.contains("does not offer the memory controller"),
            "{err}"
        );
    }

    #[test]
    fn the_watchdog_measures_a_real_tree() {
        // This test process and a child of it: the tree's memory is at
        // least ours.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let tree = descendants(me);
        assert!(tree.contains(&child.id()), "{tree:?}");
        let rss = tree_rss(me);
        assert!(rss > tree_rss(child.id()), "{rss}");
        assert!(tree_tasks(me) >= 2);
        // No cgroup: the watchdog holds memory-max (1 MiB, below what
        // `--memory-max` accepts, so that this process is over it).
        let e = Enforcer {
            limits: Limits {
                memory_max: Some(1 << 20),
                ..Limits::default()
            },
            cgroup: None,
            notes: Vec::new(),
        };
        let why = e
            .over_memory(me)
            .expect("this test process holds more than 1 MiB");
        assert!(why.contains("memory-max 1M exceeded"), "{why}");
        let roomy = Enforcer {
            limits: Limits {
                memory_max: Some(1 << 40),
                ..Limits::default()
            },
            ..e
        };
        assert_eq!(roomy.over_memory(me), None);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
