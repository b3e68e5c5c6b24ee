//! `openclawctl export kubernetes` and `doctor --kubernetes`: the glue
//! between the registry and `openclaw_service_templates::kubernetes`.

use std::path::Path;

use openclaw_profiles::{config, dotenv, outln};
use openclaw_service_templates::kubernetes::{self, Options, Tenant};

use crate::context::Context;
use crate::{CmdResult, Failure, report};

/// The facts of one profile an export needs.
fn tenant(ctx: &Context, name: &str) -> Result<Tenant, Failure> {
    let paths = ctx.known_profile(name)?;
    let cfg = config::load_config(&paths.config_path)
        .map_err(|e| Failure::conflict(format!("profile `{name}`: {e}")))?
        .unwrap_or_default();
    let port = openclaw_profiles::ports::profile_port(&paths.profile, cfg.gateway.port);
    let mut raw = cfg.raw;
    // A token kept in the state dir's `.env` (the gateway applies it) is
    // the tenant's token too.
    let from_env = std::fs::read_to_string(paths.state_dir.join(".env"))
        .ok()
        .and_then(|t| {
            dotenv::parse_dotenv(&t)
                .into_iter()
                .find(|(k, _)| k == "OPENCLAW_GATEWAY_TOKEN")
                .map(|(_, v)| v)
        });
    if cfg.gateway.auth.token.is_none()
        && let Some(t) = from_env
        && raw.is_object()
    {
        raw["gateway"]["auth"]["token"] = t.into();
    }
    Ok(Tenant {
        profile: name.to_string(),
        port,
        config: raw,
        limits: paths.limits,
    })
}

/// `export kubernetes`: renders `names` into `out` (files replaced
/// atomically; the Secret files 0600).
pub fn kubernetes(
    ctx: &Context,
    names: &[String],
    out: &Path,
    image: String,
    storage: String,
) -> CmdResult {
    let tenants = names
        .iter()
        .map(|n| tenant(ctx, n))
        .collect::<Result<Vec<_>, _>>()?;
    let export =
        kubernetes::render(&tenants, &Options { image, storage }).map_err(Failure::usage)?;
    for (rel, text) in &export.files {
        let path = out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mode = if rel.ends_with("secret.yaml") {
            0o600
        } else {
            0o644
        };
        openclaw_profiles::atomic::write_atomic(&path, text.as_bytes(), mode)
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
    }
    for n in &export.notes {
        report::note(format!("note: {n}"));
    }
    for t in &tenants {
        let name = kubernetes::k8s_name(&t.profile).map_err(Failure::usage)?;
        report::done(
            format!(
                "{}: {} (namespace {})",
                t.profile,
                out.join(&name).display(),
                kubernetes::namespace(&name)
            ),
            serde_json::json!({
                "profile": t.profile,
                "dir": out.join(&name).display().to_string(),
                "namespace": kubernetes::namespace(&name),
            }),
        );
    }
    report::note(format!(
        "apply with `kubectl apply -k {}`; check with `openclawctl doctor --kubernetes {}`",
        out.display(),
        out.display()
    ));
    Ok(())
}

/// `doctor --kubernetes DIR`: exit 0 clean, 1 with findings, 2 when the
/// manifests cannot be read.
pub fn lint_kubernetes(dir: &Path, json: bool) -> CmdResult {
    let findings = kubernetes::lint(dir).map_err(Failure::usage)?;
    if json {
        let list: Vec<_> = findings
            .iter()
            .map(|f| {
                serde_json::json!({"id": f.id, "severity": "error",
                                   "file": f.file.display().to_string(), "message": f.message})
            })
            .collect();
        let doc = serde_json::json!({"ok": findings.is_empty(), "findings": list});
        outln!("{doc:#}");
    } else if findings.is_empty() {
        outln!("{}: no findings", dir.display());
    } else {
        for f in &findings {
            outln!("error [{}] {}: {}", f.id, f.file.display(), f.message);
        }
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            message: String::new(),
        })
    }
}

/// A path for `sh`, single-quoted.
fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"))
}

/// `export systemd`: per profile, `DIR/<profile>/` holds the unit (for the
/// target's home and binary), `openclaw.json` and `gateway.systemd.env`
/// (0600, from the profile's `.env`), and `install.sh`, which creates the
/// state dir (0700), copies the config only where none exists, installs the
/// unit and enables it (`OPENCLAW_INSTALL_NO_START=1`: files only).
pub fn systemd(
    ctx: &Context,
    names: &[String],
    out: &Path,
    binary: &Path,
    target_home: Option<&Path>,
) -> CmdResult {
    let here = ctx.registry.home().to_path_buf();
    let there = target_home.map_or_else(|| here.clone(), Path::to_path_buf);
    if !binary.is_absolute() || !there.is_absolute() {
        return Err(Failure::usage(
            "--binary and --home must be absolute paths (the unit runs with no working directory)",
        ));
    }
    let moved = |p: &Path| match p.strip_prefix(&here) {
        Ok(rel) => there.join(rel),
        Err(_) => p.to_path_buf(),
    };
    for name in names {
        let paths = ctx.known_profile(name)?;
        let port = crate::facts::configured_port(&paths)
            .map_err(|e| Failure::conflict(format!("profile `{name}`: {e}")))?;
        let target = openclaw_profiles::paths::ProfilePaths {
            state_dir: moved(&paths.state_dir),
            config_path: moved(&paths.config_path),
            ..paths.clone()
        };
        let mut spec = openclaw_service_templates::native::spec_for(&target, &there, binary, port);
        // spec_for resolves the binary on this host; the target's is given.
        spec.binary = binary.to_path_buf();
        let unit = openclaw_service_templates::render::systemd_unit(&spec);
        let dir = out.join(paths.profile.as_str());
        std::fs::create_dir_all(&dir)
            .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
        let write = |file: &str, body: &[u8], mode: u32| {
            openclaw_profiles::atomic::write_atomic(&dir.join(file), body, mode).map_err(|e| {
                Failure::usage(format!("cannot write {}: {e}", dir.join(file).display()))
            })
        };
        let unit_name = spec.unit_name();
        write(&unit_name, unit.as_bytes(), 0o644)?;
        let config = std::fs::read(&paths.config_path).map_err(|e| {
            Failure::conflict(format!(
                "profile `{name}`: cannot read {}: {e}",
                paths.config_path.display()
            ))
        })?;
        write("openclaw.json", &config, 0o600)?;
        let dotenv = std::fs::read_to_string(paths.state_dir.join(".env")).ok();
        let has_env = dotenv.is_some();
        if let Some(text) = dotenv {
            let env = openclaw_service_templates::render::env_file(&dotenv::parse_dotenv(&text));
            write("gateway.systemd.env", env.as_bytes(), 0o600)?;
        }
        let env_line = if has_env {
            format!(
                "install -m 600 \"$here/gateway.systemd.env\" {}\n",
                sh_quote(&spec.systemd_env_file())
            )
        } else {
            String::new()
        };
        let script = format!(
            r#"#!/bin/sh
# Installs profile `{name}`'s OpenClaw gateway as a systemd user unit on this
# host (written by `openclawctl export systemd`; openclawctl is not needed).
# OPENCLAW_INSTALL_NO_START=1 installs the files without starting it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
binary={binary}
state={state}
config={config}
unit_dir="${{XDG_CONFIG_HOME:-$HOME/.config}}/systemd/user"
if [ ! -x "$binary" ]; then
  echo "install.sh: $binary is not an executable: install the openclaw binary there, or re-export with --binary" >&2
  exit 1
fi
umask 077
mkdir -p "$state/logs" "$(dirname "$config")" "$unit_dir"
chmod 700 "$state"
# A live config is never replaced: the export's copy is for a first install.
[ -e "$config" ] || install -m 600 "$here/openclaw.json" "$config"
{env_line}install -m 644 "$here/{unit_name}" "$unit_dir/{unit_name}"
if [ "${{OPENCLAW_INSTALL_NO_START:-}}" = 1 ]; then
  echo "installed {unit_name} (not started)"
  exit 0
fi
systemctl --user daemon-reload
systemctl --user enable --now {unit_name}
echo "installed and started {unit_name} (port {port})"
"#,
            binary = sh_quote(binary),
            state = sh_quote(&target.state_dir),
            config = sh_quote(&target.config_path),
        );
        write("install.sh", script.as_bytes(), 0o755)?;
        report::done(
            format!("{name}: {} ({unit_name}, port {port})", dir.display()),
            serde_json::json!({"profile": name, "dir": dir.display().to_string(),
                               "unit": unit_name, "port": port}),
        );
    }
    report::note("copy each directory to its host and run its install.sh as the user");
    Ok(())
}
