//! Which node commands may run (spec `nodes-canvas.md` §4, after the real
//! gateway's `node-command-policy`): platform defaults, the desktop-host
//! commands that count only once an operator approved them, dangerous
//! commands that need an explicit `gateway.nodes.commands.allow`, the
//! config's `allow`/`deny`, and the private `worker.*` controls nobody may
//! invoke.

use std::collections::BTreeSet;

use serde_json::Value;

const SYSTEM_RUN: &[&str] = &["system.run.prepare", "system.run", "system.which"];
const EXEC_APPROVALS: &[&str] = &["system.execApprovals.get", "system.execApprovals.set"];
const FILE: &[&str] = &["fs.listDir", "terminal.upload"];
const BROWSER_PROXY: &[&str] = &["browser.proxy", "browser.proxy.upload.v1"];
const MCP_CALL: &str = "mcp.tools.call.v1";
const CLAUDE_RUN: &str = "agent.cli.claude.run.v1";
const NOTIFY: &str = "system.notify";
const SCREEN: &[&str] = &["screen.snapshot"];
const DESKTOP_STREAM: &str = "desktop.stream";
const COMPUTER: &[&str] = &["computer.act"];
const CAMERA: &[&str] = &["camera.list"];
const LOCATION: &[&str] = &["location.get"];
const DEVICE: &[&str] = &["device.info", "device.status"];
/// Defaults the bundled plugins add on desktop platforms (Ollama).
const DESKTOP_PLUGIN_DEFAULTS: &[&str] = &["ollama.chat", "ollama.models"];
/// macOS nodes with the canvas capability.
const CANVAS: &[&str] = &["canvas.present", "canvas.navigate", "canvas.hide"];

/// Commands that need an explicit `gateway.nodes.commands.allow` entry.
pub const DANGEROUS: &[&str] = &[
    "camera.snap",
    "camera.clip",
    "camera.ptz.control",
    "screen.record",
    "contacts.add",
    "calendar.add",
    "reminders.add",
    "sms.send",
    "sms.search",
    "health.summary",
];

/// Commands only an `operator.admin` caller may invoke.
pub const ADMIN_ONLY: &[&str] = &[
    "browser.proxy",
    "browser.proxy.upload.v1",
    "fs.listDir",
    "terminal.upload",
];

/// The private worker controls (never invokable, never declared).
pub fn is_private(command: &str) -> bool {
    command.starts_with("worker.")
}

fn desktop_host() -> BTreeSet<&'static str> {
    let mut s: BTreeSet<&str> = [SYSTEM_RUN, EXEC_APPROVALS, FILE, BROWSER_PROXY, SCREEN]
        .concat()
        .into_iter()
        .collect();
    s.extend([MCP_CALL, CLAUDE_RUN, DESKTOP_STREAM]);
    s
}

fn system() -> Vec<&'static str> {
    let mut v = [SYSTEM_RUN, EXEC_APPROVALS, FILE].concat();
    v.push(NOTIFY);
    v.extend(BROWSER_PROXY);
    v.extend([MCP_CALL, CLAUDE_RUN]);
    v
}

/// OpenClaw's platform id: a canonical `platform` whose `deviceFamily`
/// agrees (`linux` + `Linux`, `macos` + `Mac`, ...), else `unknown`.
pub fn platform_id(platform: &str, device_family: Option<&str>) -> &'static str {
    let p = platform.trim().to_ascii_lowercase();
    let f = device_family.unwrap_or("").trim().to_ascii_lowercase();
    match p.as_str() {
        "ios" if f.is_empty() || ["iphone", "ipad", "ios"].contains(&f.as_str()) => "ios",
        "watchos" if f == "apple watch" || f == "watchos" => "watchos",
        "android" if f.is_empty() || f == "android" => "android",
        "macos" if f == "mac" => "macos",
        "windows" if f == "windows" => "windows",
        "linux" if f == "linux" => "linux",
        "" if f.contains("linux") => "linux",
        "" if f.contains("mac") => "macos",
        "" if f.contains("windows") => "windows",
        _ => "unknown",
    }
}

fn is_desktop(platform: &str) -> bool {
    matches!(platform, "macos" | "windows" | "linux")
}

fn defaults(platform: &str) -> Vec<&'static str> {
    let desktop_screen = [SCREEN, &[DESKTOP_STREAM]].concat();
    match platform {
        "linux" => [system(), desktop_screen, COMPUTER.to_vec()].concat(),
        "windows" => [
            CAMERA.to_vec(),
            LOCATION.to_vec(),
            DEVICE.to_vec(),
            system(),
            desktop_screen,
            COMPUTER.to_vec(),
        ]
        .concat(),
        "macos" => [
            CAMERA.to_vec(),
            vec!["camera.ptz.status"],
            LOCATION.to_vec(),
            DEVICE.to_vec(),
            vec![
                "device.apps",
                "contacts.search",
                "calendar.events",
                "reminders.list",
                "photos.latest",
                "motion.activity",
                "motion.pedometer",
            ],
            system(),
            desktop_screen,
            COMPUTER.to_vec(),
            CANVAS.to_vec(),
        ]
        .concat(),
        "ios" => [
            CAMERA.to_vec(),
            LOCATION.to_vec(),
            DEVICE.to_vec(),
            vec![
                "contacts.search",
                "calendar.events",
                "reminders.list",
                "photos.latest",
                "motion.activity",
                "motion.pedometer",
                NOTIFY,
            ],
        ]
        .concat(),
        "watchos" => [DEVICE.to_vec(), vec![NOTIFY]].concat(),
        "android" => [
            CAMERA.to_vec(),
            LOCATION.to_vec(),
            vec!["notifications.list", "notifications.actions", NOTIFY],
            DEVICE.to_vec(),
            vec![
                "device.permissions",
                "device.health",
                "device.apps",
                "contacts.search",
                "calendar.events",
                "callLog.search",
                "reminders.list",
                "photos.latest",
                "motion.activity",
                "motion.pedometer",
                "mobile.ui.observe",
                "mobile.ui.act",
            ],
        ]
        .concat(),
        _ => [CAMERA, LOCATION, &[NOTIFY]].concat(),
    }
}

/// `gateway.nodes.commands.allow|deny` from the config.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Extra commands allowed (dangerous ones included).
    pub allow: Vec<String>,
    /// Commands never allowed.
    pub deny: Vec<String>,
}

impl Config {
    /// Reads `gateway.nodes.commands` from the raw config.
    pub fn from_raw(raw: &Value) -> Self {
        let list = |key: &str| -> Vec<String> {
            raw.pointer(&format!("/gateway/nodes/commands/{key}"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            allow: list("allow"),
            deny: list("deny"),
        }
    }
}

/// The commands an operator may be asked to approve for a node: the
/// platform's defaults (desktop-host ones included) plus `allow`, minus
/// `deny` (a dangerous command named in `allow` survives it) and the
/// private controls.
pub fn pairing_allowlist(cfg: &Config, platform: &str) -> BTreeSet<String> {
    let mut allow: BTreeSet<String> = defaults(platform).iter().map(|s| s.to_string()).collect();
    if is_desktop(platform) {
        allow.extend(DESKTOP_PLUGIN_DEFAULTS.iter().map(|s| s.to_string()));
    }
    // Dangerous commands stay askable here (approval is their gate) but
    // come only from `allow`: no platform default names one.
    allow.extend(cfg.allow.iter().cloned());
    for d in &cfg.deny {
        if !DANGEROUS.contains(&d.as_str()) {
            allow.remove(d);
        }
    }
    allow.retain(|c| !is_private(c));
    allow
}

/// The commands a node may run now: the platform's defaults (desktop-host
/// commands only once approved), plugin defaults and `allow`, without the
/// dangerous ones unless allowed explicitly, minus `deny` and the private
/// controls.
pub fn runtime_allowlist(cfg: &Config, platform: &str, approved: &[String]) -> BTreeSet<String> {
    let host = desktop_host();
    let mut allow: BTreeSet<String> = defaults(platform)
        .into_iter()
        .filter(|c| !is_desktop(platform) || !host.contains(c))
        .map(str::to_string)
        .collect();
    if is_desktop(platform) {
        allow.extend(DESKTOP_PLUGIN_DEFAULTS.iter().map(|s| s.to_string()));
        allow.extend(
            approved
                .iter()
                .filter(|c| host.contains(c.as_str()))
                .cloned(),
        );
    }
    allow.retain(|c| !DANGEROUS.contains(&c.as_str()));
    allow.extend(cfg.allow.iter().cloned());
    for d in &cfg.deny {
        allow.remove(d);
    }
    allow.retain(|c| !is_private(c));
    allow
}

/// Declared commands, trimmed and deduplicated (first occurrence kept),
/// private controls dropped.
pub fn normalize_declared(commands: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    commands
        .iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty() && !is_private(c) && seen.insert(c.clone()))
        .collect()
}

/// Why `command` may not run, as the real gateway words it
/// (`details.reason` first, then the message).
pub fn rejection(
    cfg: &Config,
    command: &str,
    platform: &str,
    allowlist: &BTreeSet<String>,
    effective: &[String],
    declared: &[String],
) -> Option<(&'static str, String)> {
    if is_private(command) || !allowlist.contains(command) {
        let msg = if cfg.deny.iter().any(|d| d == command) {
            format!(
                "node command not allowed: \"{command}\" is blocked by gateway.nodes.commands.deny"
            )
        } else if DANGEROUS.contains(&command) {
            format!(
                "node command not allowed: \"{command}\" requires explicit gateway.nodes.commands.allow opt-in"
            )
        } else {
            format!(
                "node command not allowed: \"{command}\" is not in the allowlist for platform \"{platform}\""
            )
        };
        return Some(("command not allowlisted", msg));
    }
    if effective.is_empty() {
        let msg = if declared.iter().any(|c| c == command) {
            "node command not allowed: the node's declared command surface is pending approval; run `openclaw nodes pending`, then `openclaw nodes approve <requestId>`".to_string()
        } else {
            "node command not allowed: the node did not declare any supported commands".to_string()
        };
        return Some(("node did not declare commands", msg));
    }
    if !effective.iter().any(|c| c == command) {
        return Some((
            "command not declared by node",
            format!(
                "node command not allowed: the node (platform: {platform}) does not support \"{command}\""
            ),
        ));
    }
    None
}

/// The scopes an operator needs to approve a surface with `commands`.
pub fn required_approve_scopes(commands: &[String]) -> Vec<&'static str> {
    const ADMIN_TO_APPROVE: &[&str] = &[
        "system.run",
        "system.run.prepare",
        "system.which",
        "browser.proxy",
        "browser.proxy.upload.v1",
        "fs.listDir",
        "system.execApprovals.get",
        "system.execApprovals.set",
    ];
    let mut scopes = vec![crate::scopes::PAIRING];
    if commands
        .iter()
        .any(|c| ADMIN_TO_APPROVE.contains(&c.as_str()))
    {
        scopes.push(crate::scopes::ADMIN);
    } else if !commands.is_empty() {
        scopes.push(crate::scopes::WRITE);
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The real headless host's 21 declared commands.
    const HEADLESS: &[&str] = &[
        "browser.proxy",
        "browser.proxy.upload.v1",
        "desktop.stream",
        "dir.fetch",
        "dir.list",
        "file.create",
        "file.fetch",
        "file.stat",
        "file.write",
        "fs.listDir",
        "mcp.tools.call.v1",
        "ollama.chat",
        "ollama.models",
        "system.execApprovals.get",
        "system.execApprovals.set",
        "system.run",
        "system.run.prepare",
        "system.which",
        "terminal.upload",
        "workspace.memory",
        "workspace.skills",
    ];

    #[test]
    fn platforms_need_an_agreeing_device_family() {
        assert_eq!(platform_id("linux", Some("Linux")), "linux");
        assert_eq!(platform_id("macos", Some("Mac")), "macos");
        assert_eq!(platform_id("linux", Some("Mac")), "unknown");
        assert_eq!(platform_id("", Some("Linux desktop")), "linux");
        assert_eq!(platform_id("plan9", None), "unknown");
    }

    #[test]
    fn the_headless_linux_host_asks_for_the_thirteen_commands_the_real_gateway_lists() {
        let cfg = Config::default();
        let allow = pairing_allowlist(&cfg, "linux");
        let asked: Vec<String> = normalize_declared(&strings(HEADLESS))
            .into_iter()
            .filter(|c| allow.contains(c))
            .collect();
        assert_eq!(
            asked,
            strings(&[
                "browser.proxy",
                "browser.proxy.upload.v1",
                "desktop.stream",
                "fs.listDir",
                "mcp.tools.call.v1",
                "ollama.chat",
                "ollama.models",
                "system.execApprovals.get",
                "system.execApprovals.set",
                "system.run",
                "system.run.prepare",
                "system.which",
                "terminal.upload",
            ])
        );
        assert_eq!(
            required_approve_scopes(&asked),
            vec!["operator.pairing", "operator.admin"]
        );
        assert_eq!(
            required_approve_scopes(&strings(&["canvas.present"])),
            vec!["operator.pairing", "operator.write"]
        );
        assert_eq!(required_approve_scopes(&[]), vec!["operator.pairing"]);
    }

    #[test]
    fn the_three_rejections_are_worded_as_openclaw_words_them() {
        let cfg = Config {
            allow: Vec::new(),
            deny: strings(&["system.which"]),
        };
        let approved = strings(&["system.which", "system.run"]);
        let allow = runtime_allowlist(&cfg, "linux", &approved);
        assert!(allow.contains("system.run") && !allow.contains("system.which"));
        let r = |c: &str, eff: &[String]| rejection(&cfg, c, "linux", &allow, eff, &approved);
        assert!(
            r("system.which", &approved)
                .unwrap()
                .1
                .contains("gateway.nodes.commands.deny")
        );
        assert!(
            r("camera.snap", &approved)
                .unwrap()
                .1
                .contains("explicit gateway.nodes.commands.allow")
        );
        assert_eq!(
            r("canvas.navigate", &approved).unwrap().1,
            "node command not allowed: \"canvas.navigate\" is not in the allowlist for platform \"linux\""
        );
        assert!(r("system.run", &[]).unwrap().1.contains("pending approval"));
        assert!(r("system.run", &approved).is_none());
        assert!(r("worker.launch.v1", &approved).is_some());
        // Not yet approved: a desktop-host command is not runnable.
        assert!(!runtime_allowlist(&Config::default(), "linux", &[]).contains("system.run"));
        // A dangerous command is runnable only when allowed explicitly.
        let opted = Config {
            allow: strings(&["camera.snap"]),
            deny: Vec::new(),
        };
        assert!(runtime_allowlist(&opted, "macos", &[]).contains("camera.snap"));
    }
}
