//! Finding gateway services on the host (`service status --deep`, doctor):
//! unit files and plists that mention OpenClaw (or its old names), with
//! what they run and for which profile.

use std::path::{Path, PathBuf};

/// Where a service file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A per-user unit or agent.
    User,
    /// A system-wide unit or daemon.
    System,
}

/// A gateway-like service file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundService {
    /// The file.
    pub path: PathBuf,
    /// Unit name or label (file name without `.plist`).
    pub name: String,
    /// User or system.
    pub scope: Scope,
    /// The profile it runs: `OPENCLAW_PROFILE=`, else derived from the name,
    /// `None` for the default profile.
    pub profile: Option<String>,
    /// The program it starts (first word of `ExecStart`, or the binary in
    /// `ProgramArguments` after an env wrapper).
    pub program: Option<PathBuf>,
    /// Carries `OPENCLAW_SERVICE_MARKER=openclaw` and `..._KIND=gateway`.
    pub marked: bool,
    /// Named after OpenClaw's old names (`clawdbot`, `moltbot`).
    pub legacy: bool,
}

/// User dirs always scanned; `deep` adds the system dirs.
pub fn scan_dirs(home: &Path, user_unit_dir: &Path, deep: bool) -> Vec<(PathBuf, Scope)> {
    let mut dirs = vec![
        (user_unit_dir.to_path_buf(), Scope::User),
        (home.join("Library/LaunchAgents"), Scope::User),
    ];
    if deep {
        for d in [
            "/etc/systemd/system",
            "/usr/lib/systemd/system",
            "/lib/systemd/system",
            "/Library/LaunchAgents",
            "/Library/LaunchDaemons",
        ] {
            dirs.push((PathBuf::from(d), Scope::System));
        }
    }
    dirs
}

/// Reads every candidate service file in `dirs`.
pub fn scan(dirs: &[(PathBuf, Scope)]) -> Vec<FoundService> {
    let mut found = Vec::new();
    for (dir, scope) in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let Some(file) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if !(file.ends_with(".service") || file.ends_with(".plist")) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Some(s) = parse_service(&path, &file, *scope, &text) {
                found.push(s);
            }
        }
    }
    found
}

/// Recognises a gateway-like service in `text`.
pub fn parse_service(path: &Path, file: &str, scope: Scope, text: &str) -> Option<FoundService> {
    let lower = text.to_lowercase();
    if !["openclaw", "clawdbot", "moltbot"]
        .iter()
        .any(|n| lower.contains(n))
    {
        return None;
    }
    let name = file.strip_suffix(".plist").unwrap_or(file).to_string();
    let env_value = |key: &str| -> Option<String> {
        // systemd: Environment=KEY=v or Environment="KEY=v"; plist: <key>KEY</key><string>v</string>
        let unit = text.lines().find_map(|l| {
            let l = l.trim().strip_prefix("Environment=")?.trim_matches('"');
            l.strip_prefix(&format!("{key}=")).map(str::to_string)
        });
        unit.or_else(|| {
            let at = text.find(&format!("<key>{key}</key>"))?;
            let rest = &text[at..];
            let start = rest.find("<string>")? + "<string>".len();
            let end = rest[start..].find("</string>")?;
            Some(rest[start..start + end].to_string())
        })
    };
    let marked = env_value("OPENCLAW_SERVICE_MARKER").as_deref() == Some("openclaw")
        && env_value("OPENCLAW_SERVICE_KIND").as_deref() == Some("gateway");
    let profile = env_value("OPENCLAW_PROFILE").or_else(|| {
        name.strip_prefix("openclaw-gateway-")
            .and_then(|n| n.strip_suffix(".service"))
            .or_else(|| {
                name.strip_prefix("ai.openclaw.")
                    .filter(|n| *n != "gateway" && *n != "node")
            })
            .map(str::to_string)
    });
    let program = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("ExecStart="))
        .and_then(first_word)
        .or_else(|| plist_program(text))
        .map(PathBuf::from);
    Some(FoundService {
        path: path.to_path_buf(),
        legacy: lower.contains("clawdbot") || lower.contains("moltbot"),
        name,
        scope,
        profile,
        program,
        marked,
    })
}

fn first_word(cmd: &str) -> Option<String> {
    let cmd = cmd.trim().trim_start_matches(['-', '@', '+', '!', ':']);
    if let Some(rest) = cmd.strip_prefix('"') {
        return rest.split('"').next().map(|s| s.replace("%%", "%"));
    }
    cmd.split_whitespace().next().map(|s| s.replace("%%", "%"))
}

/// The program of a plist: the first `<string>` of `ProgramArguments`
/// that is not `/bin/sh` or an env wrapper/env file.
fn plist_program(text: &str) -> Option<String> {
    let at = text.find("<key>ProgramArguments</key>")?;
    let rest = &text[at..text[at..].find("</array>")? + at];
    rest.split("<string>")
        .skip(1)
        .filter_map(|s| s.split("</string>").next())
        .find(|s| *s != "/bin/sh" && !s.ends_with("-env-wrapper.sh") && !s.ends_with(".env"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceSpec;
    use crate::render::{launchd_plist, systemd_unit};

    fn spec(profile: Option<&str>) -> ServiceSpec {
        ServiceSpec {
            profile: profile.map(str::to_string),
            binary: "/opt/my apps/openclaw".into(),
            home: "/home/u".into(),
            state_dir: "/home/u/.openclaw-x".into(),
            config_path: "/home/u/.openclaw-x/openclaw.json".into(),
            canonical_paths: true,
            port: 1,
            ports: Default::default(),
            limits: Default::default(),
        }
    }

    #[test]
    fn our_own_files_are_recognised_with_profile_program_and_marker() {
        let unit = systemd_unit(&spec(Some("ops")));
        let s = parse_service(
            Path::new("/u/x"),
            "openclaw-gateway-ops.service",
            Scope::User,
            &unit,
        )
        .unwrap();
        assert_eq!(s.profile.as_deref(), Some("ops"));
        assert_eq!(s.program, Some(PathBuf::from("/opt/my apps/openclaw")));
        assert!(s.marked && !s.legacy);
        let plist = launchd_plist(&spec(None));
        let s = parse_service(
            Path::new("/p"),
            "ai.openclaw.gateway.plist",
            Scope::User,
            &plist,
        )
        .unwrap();
        assert_eq!(
            (s.name.as_str(), s.profile.as_deref()),
            ("ai.openclaw.gateway", None)
        );
        assert_eq!(s.program, Some(PathBuf::from("/opt/my apps/openclaw")));
    }

    #[test]
    fn foreign_and_legacy_files() {
        assert!(
            parse_service(
                Path::new("/x"),
                "nginx.service",
                Scope::System,
                "[Service]\nExecStart=/usr/sbin/nginx\n"
            )
            .is_none()
        );
        let s = parse_service(
            Path::new("/x"),
            "clawdbot-gateway.service",
            Scope::User,
            "[Service]\nExecStart=/usr/bin/node /opt/clawdbot/dist/index.js gateway\n",
        )
        .unwrap();
        assert!(s.legacy && !s.marked);
        assert_eq!(s.program, Some(PathBuf::from("/usr/bin/node")));
    }
}
