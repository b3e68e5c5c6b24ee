//! Pure renderers: a [`ServiceSpec`] in, the exact bytes of a file out.

use std::path::Path;

use crate::ServiceSpec;

const UNIT_TEMPLATE: &str = include_str!("../templates/openclaw-gateway.service");
const PLIST_TEMPLATE: &str = include_str!("../templates/ai.openclaw.plist");

/// The service's PATH: stable system dirs only.
pub const SERVICE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// The launchd agent's PATH (OpenClaw's fixed list).
pub const LAUNCHD_PATH: &str =
    "/opt/homebrew/bin:/opt/homebrew/sbin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    debug_assert!(!out.contains("{{"), "unfilled placeholder in template");
    out
}

/// Escapes `%` (a systemd specifier) in any value written to a unit.
fn systemd_value(s: &str) -> String {
    s.replace('%', "%%")
}

/// Quotes one `ExecStart` word the way systemd parses it.
fn systemd_word(s: &str) -> String {
    let v = systemd_value(s).replace('$', "$$");
    if v.is_empty()
        || v.chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        v
    }
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The environment every service of ours carries, in order. Secrets are
/// never among them: they live in the profile's env file.
pub fn service_environment(
    spec: &ServiceSpec,
    manager_key: (&str, String),
    path: &str,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("HOME".to_string(), path_str(&spec.home)),
        ("TMPDIR".to_string(), path_str(&spec.state_dir.join("tmp"))),
        ("PATH".to_string(), path.to_string()),
    ];
    if let Some(p) = &spec.profile {
        env.push(("OPENCLAW_PROFILE".into(), p.clone()));
    }
    if !spec.canonical_paths {
        env.push(("OPENCLAW_STATE_DIR".into(), path_str(&spec.state_dir)));
        env.push(("OPENCLAW_CONFIG_PATH".into(), path_str(&spec.config_path)));
    }
    env.push(("OPENCLAW_GATEWAY_PORT".into(), spec.port.to_string()));
    if !spec.ports.is_full() {
        env.push((
            openclaw_profiles::ports::ENV_PORT_PLAN.into(),
            spec.ports.as_str().into(),
        ));
    }
    env.push((manager_key.0.to_string(), manager_key.1));
    env.push(("OPENCLAW_SERVICE_MARKER".into(), "openclaw".into()));
    env.push(("OPENCLAW_SERVICE_KIND".into(), "gateway".into()));
    env
}

/// The gateway's argv after the binary.
fn gateway_args(spec: &ServiceSpec) -> Vec<String> {
    vec!["gateway".into(), "--port".into(), spec.port.to_string()]
}

/// The systemd user unit (`openclaw-gateway[-<p>].service`).
pub fn systemd_unit(spec: &ServiceSpec) -> String {
    let exec: Vec<String> = std::iter::once(path_str(&spec.binary))
        .chain(gateway_args(spec))
        .map(|w| systemd_word(&w))
        .collect();
    let environment: String = service_environment(
        spec,
        ("OPENCLAW_SYSTEMD_UNIT", spec.unit_name()),
        SERVICE_PATH,
    )
    .into_iter()
    .map(|(k, v)| {
        let kv = systemd_value(&format!("{k}={v}"));
        if kv.chars().any(|c| c.is_whitespace() || c == '"') {
            format!(
                "Environment=\"{}\"\n",
                kv.replace('\\', "\\\\").replace('"', "\\\"")
            )
        } else {
            format!("Environment={kv}\n")
        }
    })
    .collect();
    let limits: String = spec
        .limits
        .systemd_lines()
        .into_iter()
        .map(|l| l + "\n")
        .collect();
    fill(
        UNIT_TEMPLATE,
        &[
            ("description", &systemd_value(&spec.description())),
            ("exec_start", &exec.join(" ")),
            (
                "env_file",
                &systemd_value(&path_str(&spec.systemd_env_file())),
            ),
            ("environment", &environment),
            ("limits", &limits),
            ("log_file", &systemd_value(&path_str(&spec.log_file()))),
        ],
    )
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `~/Library/Logs/openclaw/gateway[-<p>].log`.
pub fn launchd_stdout(spec: &ServiceSpec) -> std::path::PathBuf {
    let name = match &spec.profile {
        None => "gateway.log".to_string(),
        Some(p) => format!("gateway-{p}.log"),
    };
    spec.home.join("Library/Logs/openclaw").join(name)
}

/// `~/Library/Logs/openclaw/gateway[-<p>].err.log`.
pub fn launchd_stderr(spec: &ServiceSpec) -> std::path::PathBuf {
    launchd_stdout(spec).with_extension("err.log")
}

/// The launchd agent (`ai.openclaw.<p>.plist`): runs the gateway through the
/// env wrapper so secrets stay in the 0600 env file.
pub fn launchd_plist(spec: &ServiceSpec) -> String {
    let args: Vec<String> = [
        "/bin/sh".to_string(),
        path_str(&spec.launchd_wrapper()),
        path_str(&spec.launchd_env_file()),
    ]
    .into_iter()
    .chain(std::iter::once(path_str(&spec.binary)))
    .chain(gateway_args(spec))
    .collect();
    let program_arguments: String = args
        .iter()
        .map(|a| format!("    <string>{}</string>\n", xml(a)))
        .collect();
    let environment: String =
        service_environment(spec, ("OPENCLAW_LAUNCHD_LABEL", spec.label()), LAUNCHD_PATH)
            .into_iter()
            .map(|(k, v)| format!("    <key>{}</key><string>{}</string>\n", xml(&k), xml(&v)))
            .collect();
    fill(
        PLIST_TEMPLATE,
        &[
            ("label", &xml(&spec.label())),
            ("description", &xml(&spec.description())),
            ("program_arguments", &program_arguments),
            ("environment", &environment),
            ("resource_limits", &launchd_limits(&spec.limits)),
            ("stdout", &xml(&path_str(&launchd_stdout(spec)))),
            ("stderr", &xml(&path_str(&launchd_stderr(spec)))),
        ],
    )
}

/// launchd enforces only the open-files limit (`NumberOfFiles`, soft and
/// hard); memory, CPU and tasks have no per-job key that macOS honours, so
/// `service install` says so.
fn launchd_limits(limits: &openclaw_profiles::limits::Limits) -> String {
    limits.nofile.map_or(String::new(), |n| {
        ["SoftResourceLimits", "HardResourceLimits"]
            .iter()
            .map(|k| {
                format!(
                    "  <key>{k}</key><dict><key>NumberOfFiles</key><integer>{n}</integer></dict>\n"
                )
            })
            .collect()
    })
}

/// The launchd env wrapper: sources the env file, then runs the gateway.
pub fn launchd_wrapper() -> String {
    "#!/bin/sh\nset -eu\nenv_file=\"$1\"\nshift\nset -a\n. \"$env_file\"\nset +a\nexec \"$@\"\n"
        .to_string()
}

/// An env file (systemd `EnvironmentFile=` and the launchd wrapper read
/// the same format): `KEY=value` lines, single-line values, quoted when
/// they hold anything a shell would split.
pub fn env_file(vars: &[(String, String)]) -> String {
    let mut out = String::from(
        "# Written by openclawctl from the profile's .env; secrets stay here (0600).\n",
    );
    for (k, v) in vars {
        if v.contains('\n') {
            continue; // single-line values only
        }
        let safe = v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@+,=".contains(c));
        if safe {
            out.push_str(&format!("{k}={v}\n"));
        } else {
            out.push_str(&format!("{k}='{}'\n", v.replace('\'', "'\\''")));
        }
    }
    out
}

pub use openclaw_profiles::dotenv::parse_dotenv;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn spec(profile: Option<&str>, canonical: bool) -> ServiceSpec {
        let state = match (profile, canonical) {
            (_, false) => PathBuf::from("/srv/openclaw/custom state"),
            (None, true) => PathBuf::from("/home/u/.openclaw"),
            (Some(p), true) => PathBuf::from(format!("/home/u/.openclaw-{p}")),
        };
        ServiceSpec {
            profile: profile.map(str::to_string),
            binary: PathBuf::from("/opt/openclawctl/bin/openclaw"),
            home: PathBuf::from("/home/u"),
            config_path: state.join("openclaw.json"),
            state_dir: state,
            canonical_paths: canonical,
            port: 19789,
            ports: Default::default(),
            limits: Default::default(),
        }
    }

    #[test]
    fn systemd_units() {
        insta::assert_snapshot!("systemd__default", systemd_unit(&spec(None, true)));
        insta::assert_snapshot!("systemd__named", systemd_unit(&spec(Some("ops"), true)));
        insta::assert_snapshot!(
            "systemd__custom_state_dir",
            systemd_unit(&spec(Some("ops"), false))
        );
    }

    #[test]
    fn launchd_plists() {
        insta::assert_snapshot!("launchd__default", launchd_plist(&spec(None, true)));
        insta::assert_snapshot!("launchd__named", launchd_plist(&spec(Some("ops"), true)));
        insta::assert_snapshot!(
            "launchd__custom_state_dir",
            launchd_plist(&spec(Some("ops"), false))
        );
    }

    #[test]
    fn plists_parse_back_with_the_expected_keys() {
        for s in [
            spec(None, true),
            spec(Some("ops"), true),
            spec(Some("ops"), false),
        ] {
            let text = launchd_plist(&s);
            let v: plist::Value = plist::from_bytes(text.as_bytes()).expect("plist parses");
            let d = v.as_dictionary().unwrap();
            assert_eq!(d["Label"].as_string(), Some(s.label().as_str()));
            assert_eq!(d["RunAtLoad"].as_boolean(), Some(true));
            assert_eq!(d["KeepAlive"].as_boolean(), Some(true));
            assert_eq!(d["ThrottleInterval"].as_signed_integer(), Some(10));
            assert_eq!(d["ExitTimeOut"].as_signed_integer(), Some(20));
            assert_eq!(d["Umask"].as_signed_integer(), Some(63));
            let args: Vec<&str> = d["ProgramArguments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_string().unwrap())
                .collect();
            assert_eq!(args[0], "/bin/sh");
            assert_eq!(
                &args[3..],
                &[
                    "/opt/openclawctl/bin/openclaw",
                    "gateway",
                    "--port",
                    "19789"
                ]
            );
            let env = d["EnvironmentVariables"].as_dictionary().unwrap();
            assert_eq!(env["OPENCLAW_SERVICE_MARKER"].as_string(), Some("openclaw"));
            assert_eq!(
                env["OPENCLAW_LAUNCHD_LABEL"].as_string(),
                Some(s.label().as_str())
            );
            assert!(
                d["StandardOutPath"]
                    .as_string()
                    .unwrap()
                    .starts_with("/home/u/Library/Logs/openclaw/gateway")
            );
            assert!(!text.contains("TOKEN"), "no secret in a plist");
            assert!(!d.contains_key("SoftResourceLimits"), "no limit by default");
        }
        // The open-files limit is the one launchd enforces.
        let mut s = spec(Some("ops"), true);
        s.limits
            .set(openclaw_profiles::limits::Kind::Nofile, "4096")
            .unwrap();
        let v: plist::Value = plist::from_bytes(launchd_plist(&s).as_bytes()).unwrap();
        for key in ["SoftResourceLimits", "HardResourceLimits"] {
            let l = v.as_dictionary().unwrap()[key].as_dictionary().unwrap();
            assert_eq!(l["NumberOfFiles"].as_signed_integer(), Some(4096));
        }
    }

    #[test]
    fn values_are_escaped_for_systemd() {
        assert_eq!(systemd_word("/a b/c"), "\"/a b/c\"");
        assert_eq!(systemd_word("50%"), "50%%");
        assert_eq!(systemd_word("$HOME"), "$$HOME");
        let mut s = spec(Some("ops"), false);
        s.binary = PathBuf::from("/opt/my apps/openclaw");
        let unit = systemd_unit(&s);
        assert!(
            unit.contains("ExecStart=\"/opt/my apps/openclaw\" gateway --port 19789"),
            "{unit}"
        );
        assert!(
            unit.contains("Environment=\"OPENCLAW_STATE_DIR=/srv/openclaw/custom state\""),
            "{unit}"
        );
    }

    #[test]
    fn env_files_round_trip_through_the_dotenv_parser() {
        let vars = vec![
            ("TELEGRAM_BOT_TOKEN".to_string(), "123:abc".to_string()),
            ("WEIRD".to_string(), "it's a $test".to_string()),
        ];
        let text = env_file(&vars);
        assert!(text.contains("TELEGRAM_BOT_TOKEN=123:abc\n"));
        assert_eq!(parse_dotenv(&text)[0], vars[0]);
    }
}

#[cfg(test)]
mod verify {
    use std::path::PathBuf;

    use super::*;

    /// `systemd-analyze verify` on every rendered unit: exit 0 and nothing
    /// on stderr (it only warns about bad keys). `scripts/install-test-tools`
    /// installs it.
    fn every_limit() -> openclaw_profiles::limits::Limits {
        use openclaw_profiles::limits::{Kind, Limits};
        let mut l = Limits::default();
        for (k, v) in [
            (Kind::Memory, "256M"),
            (Kind::Cpu, "50%"),
            (Kind::Tasks, "256"),
            (Kind::Nofile, "4096"),
        ] {
            l.set(k, v).unwrap();
        }
        l
    }

    #[test]
    fn rendered_units_pass_systemd_analyze_verify() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        for (profile, canonical) in [(None, true), (Some("ops"), true), (Some("ops"), false)] {
            let state = dir.path().join("state dir");
            let spec = ServiceSpec {
                profile: profile.map(str::to_string),
                binary: PathBuf::from("/bin/true"),
                home: dir.path().to_path_buf(),
                config_path: state.join("openclaw.json"),
                state_dir: state,
                canonical_paths: canonical,
                port: 19789,
                // A compact profile's unit carries its plan; it verifies too.
                ports: if canonical {
                    openclaw_profiles::ports::PortPlan::Full
                } else {
                    openclaw_profiles::ports::PortPlan::Compact
                },
                // So does one with every limit.
                limits: if canonical {
                    Default::default()
                } else {
                    every_limit()
                },
            };
            let unit = dir.path().join(spec.unit_name());
            std::fs::write(&unit, systemd_unit(&spec)).unwrap();
            let out = std::process::Command::new("systemd-analyze")
                .args(["verify", "--user", "--man=no"])
                .arg(&unit)
                .env("HOME", dir.path())
                .env("XDG_RUNTIME_DIR", &run)
                .output()
                .expect("systemd-analyze is installed (scripts/install-test-tools)");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.trim().is_empty(),
                "{}: {stderr}",
                spec.unit_name()
            );
        }
    }
}
