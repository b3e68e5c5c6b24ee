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
    let port = crate::facts::configured_port(&paths)
        .map_err(|e| Failure::conflict(format!("profile `{name}`: {e}")))?;
    let cfg = config::load_config(&paths.config_path)
        .map_err(|e| Failure::conflict(format!("profile `{name}`: {e}")))?
        .unwrap_or_default();
    let mut raw = cfg.raw.clone();
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
        && let Some(t) = &from_env
        && raw.is_object()
    {
        raw["gateway"]["auth"]["token"] = t.clone().into();
    }
    Ok(Tenant {
        profile: name.to_string(),
        port,
        config: raw,
        token: cfg
            .gateway
            .auth
            .token
            .map(|s| s.expose().to_string())
            .or(from_env),
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
