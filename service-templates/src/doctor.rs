//! `doctor` as both binaries run it: builds the host inventory (profiles
//! from `openclaw-profiles`, services from [`crate::scan`]), runs the pure
//! checks of `openclaw_profiles::doctor`, prints the findings (grouped by
//! profile, or the `--json` document of `cli.md`) and, with `--fix`,
//! applies the safe repairs one by one, re-checking after each.

use openclaw_profiles::outln;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use openclaw_profiles::doctor::{
    self, Finding, Fix, Inventory, ProfileFacts, ServiceFact, Severity,
};
use openclaw_profiles::paths::{EnvSnapshot, ProfilePaths};

use crate::native::{Kind, Native, spec_for};
use crate::scan::{self, Scope};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only findings involving these profiles (host-wide ones too).
    pub only: Vec<String>,
    /// Print one JSON document.
    pub json: bool,
    /// Apply safe fixes.
    pub fix: bool,
    /// Do not ask before each fix.
    pub yes: bool,
    /// Also scan system-wide service dirs.
    pub deep: bool,
}

/// Reads the whole host: `profiles` (every known profile), their services.
pub fn inventory(
    env: &EnvSnapshot,
    home: &Path,
    profiles: &[ProfilePaths],
    binary: &Path,
    deep: bool,
) -> Inventory {
    let native = Native::for_user(env, home);
    let facts = doctor::scan_profiles(profiles);
    let services = service_facts(&native, &facts, binary, deep);
    let user_units = services
        .iter()
        .any(|s| !s.system && s.name.ends_with(".service") && s.profile_known);
    let linger = (native.kind == Kind::Systemd && user_units).then(|| {
        Path::new("/var/lib/systemd/linger")
            .join(native.user())
            .exists()
    });
    let registry_error = openclaw_profiles::registry::Registry::load(env)
        .err()
        .map(|e| e.to_string());
    Inventory {
        profiles: facts,
        services,
        linger,
        user: native.user(),
        registry_error,
    }
}

fn service_facts(
    native: &Native,
    profiles: &[ProfileFacts],
    binary: &Path,
    deep: bool,
) -> Vec<ServiceFact> {
    let found = scan::scan(&scan::scan_dirs(&native.home, &native.unit_dir, deep));
    found
        .into_iter()
        .map(|s| {
            let profile = profiles
                .iter()
                .find(|p| s.profile.as_deref().unwrap_or("default") == p.paths.profile.as_str());
            let ours = profile.is_some_and(|p| {
                s.path
                    == native.service_path(
                        (!p.paths.profile.is_default()).then(|| p.paths.profile.as_str()),
                    )
            });
            let drifted = match (profile, ours) {
                (Some(p), true) => p.port.is_some_and(|port| {
                    let spec = spec_for(&p.paths, &native.home, binary, port);
                    std::fs::read_to_string(&s.path).ok().as_deref()
                        != Some(native.render(&spec).as_str())
                }),
                _ => false,
            };
            ServiceFact {
                program_missing: s
                    .program
                    .as_ref()
                    .is_some_and(|p| p.is_absolute() && !p.exists()),
                profile_known: profile.is_some(),
                running: profile.is_some_and(|p| p.lock_holder.is_some()),
                name: s.name,
                path: s.path,
                system: s.scope == Scope::System,
                profile: s.profile,
                legacy: s.legacy,
                drifted,
            }
        })
        .collect()
}

fn relevant(f: &Finding, only: &[String]) -> bool {
    only.is_empty() || f.profiles.is_empty() || f.profiles.iter().any(|p| only.contains(p))
}

fn to_json(findings: &[Finding]) -> serde_json::Value {
    let list: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "checkId": f.check_id,
                "severity": f.severity.as_str(),
                "profiles": f.profiles,
                "message": f.message,
                "fixHint": f.fix_hint,
                "fixable": f.fix.is_some(),
            })
        })
        .collect();
    let ok = !findings.iter().any(|f| f.severity >= Severity::Warning);
    serde_json::json!({ "ok": ok, "findings": list })
}

/// Doctor's findings as its `--json` document, without fixing or
/// printing anything (the dashboard shows them).
pub fn findings_json(
    env: &EnvSnapshot,
    home: &Path,
    profiles: &[ProfilePaths],
    binary: &Path,
) -> serde_json::Value {
    to_json(&doctor::check(&inventory(
        env, home, profiles, binary, false,
    )))
}

fn print_human(findings: &[Finding]) {
    if findings.is_empty() {
        outln!("doctor: no problems found");
        return;
    }
    let mut groups: Vec<(String, Vec<&Finding>)> = Vec::new();
    for f in findings {
        let key = if f.profiles.is_empty() {
            "host".to_string()
        } else {
            format!("profile {}", f.profiles.join(", "))
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(f),
            None => groups.push((key, vec![f])),
        }
    }
    for (key, list) in groups {
        outln!("{key}:");
        for f in list {
            outln!("  {:<7} {}: {}", f.severity.as_str(), f.check_id, f.message);
            outln!(
                "          fix: {}{}",
                f.fix_hint,
                if f.fix.is_some() {
                    " (doctor --fix can do this)"
                } else {
                    ""
                }
            );
        }
    }
}

fn ask(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}

/// Rewrites a drifted service file of a stopped service, without starting
/// it (the manager reloads it when it can).
fn rewrite_service(native: &Native, p: &ProfileFacts, binary: &Path) -> Result<String, String> {
    let port = p.port.ok_or("the profile's config does not parse")?;
    let spec = spec_for(&p.paths, &native.home, binary, port);
    let (path, _) = native
        .rewrite(&spec)
        .map_err(|e| format!("cannot rewrite the service of `{}`: {e}", p.paths.profile))?;
    Ok(format!("rewrote {}", path.display()))
}

/// Runs doctor; returns the exit code (0 clean, 1 findings at or above
/// warning, 2 doctor failed).
pub fn run(
    env: &EnvSnapshot,
    home: &Path,
    profiles: &[ProfilePaths],
    binary: &Path,
    opts: &Options,
) -> u8 {
    let scan = |deep| inventory(env, home, profiles, binary, deep);
    let mut inv = scan(opts.deep);
    let mut findings: Vec<Finding> = doctor::check(&inv)
        .into_iter()
        .filter(|f| relevant(f, &opts.only))
        .collect();
    if opts.fix {
        let native = Native::for_user(env, home);
        let fixable: Vec<Finding> = findings
            .iter()
            .filter(|f| f.fix.is_some())
            .cloned()
            .collect();
        for f in fixable {
            let fix = f.fix.clone().expect("filtered on fix");
            if !opts.yes && !ask(&format!("fix {} ({})?", f.check_id, f.message)) {
                eprintln!(
                    "skipped {}: {} (answer y, or pass --yes)",
                    f.check_id, f.message
                );
                continue;
            }
            let result = match &fix {
                Fix::RewriteService(name) => inv
                    .profiles
                    .iter()
                    .find(|p| p.paths.profile.as_str() == name)
                    .ok_or_else(|| format!("profile `{name}` is gone"))
                    .and_then(|p| rewrite_service(&native, p, binary)),
                other => doctor::apply_fix(other),
            };
            inv = scan(opts.deep);
            let still = doctor::check(&inv)
                .iter()
                .any(|g| g.check_id == f.check_id && g.message == f.message);
            match (result, still) {
                (Ok(what), false) => eprintln!("fixed {}: {what}", f.check_id),
                (Ok(what), true) => {
                    eprintln!("tried {} ({what}) but the check still fails", f.check_id)
                }
                (Err(e), _) => eprintln!("could not fix {}: {e}", f.check_id),
            }
        }
        findings = doctor::check(&inv)
            .into_iter()
            .filter(|f| relevant(f, &opts.only))
            .collect();
    }
    if opts.json {
        match serde_json::to_string_pretty(&to_json(&findings)) {
            Ok(s) => outln!("{s}"),
            Err(_) => return 2,
        }
    } else {
        print_human(&findings);
    }
    u8::from(findings.iter().any(|f| f.severity >= Severity::Warning))
}

/// The binary a profile's service would run, made absolute.
pub fn absolute(binary: PathBuf) -> PathBuf {
    std::fs::canonicalize(&binary).unwrap_or(binary)
}
