//! `openclawctl export kubernetes` and `doctor --kubernetes` on real
//! profiles: every manifest passes `kubernetes-validate --strict` (the
//! pinned PyPI tool, offline against its bundled schemas), our lint finds
//! nothing, and no secret leaves the Secret.

use std::path::{Path, PathBuf};
use std::process::Command;

use openclaw_e2e::TestHome;
use openclaw_e2e::home::{stderr, stdout};

/// The validator `scripts/install-kubernetes-validate` installed (the
/// suite's runner exports its path).
fn validator() -> PathBuf {
    let path = std::env::var_os("KUBERNETES_VALIDATE").map(PathBuf::from).expect(
        "KUBERNETES_VALIDATE is not set: run the suite with scripts/test (or export the path scripts/install-kubernetes-validate prints)",
    );
    assert!(path.is_file(), "{} does not exist", path.display());
    path
}

fn validate(files: &[PathBuf]) -> std::process::Output {
    Command::new(validator())
        .arg("--strict")
        .args(files)
        .output()
        .unwrap()
}

fn resources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for tenant in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        if !tenant.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(tenant.path())
            .unwrap()
            .filter_map(Result::ok)
        {
            // kustomization.yaml is kustomize's, not a Kubernetes object.
            if f.file_name() != "kustomization.yaml" {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn three_tenants_export_to_valid_manifests_with_secrets_only_in_secrets() {
    let home = TestHome::new();
    for p in ["alpha", "beta", "gamma"] {
        let out = home.ctl(&["profile", "create", p]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // Gamma's limits become its container's resources (schema-checked below).
    let out = home.ctl(&[
        "profile",
        "set",
        "gamma",
        "--memory-max",
        "96M",
        "--cpu-quota",
        "150%",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A channel token too: it must land in the Secret and nowhere else.
    let cfg = home.state_dir("beta").join("openclaw.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replacen(
        '{',
        r#"{ channels: { telegram: { botToken: "123456:beta-bot-secret" } },"#,
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let dir = home.path().join("k8s");
    let out = home.ctl(&[
        "export",
        "kubernetes",
        "--all",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("namespace openclaw-beta"),
        "{}",
        stdout(&out)
    );
    let files = resources(&dir);
    assert_eq!(files.len(), 3 * 6, "{files:?}");
    let v = validate(&files);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
    let gamma = std::fs::read_to_string(dir.join("gamma/statefulset.yaml")).unwrap();
    assert!(
        gamma.contains("limits:\n")
            && gamma.contains("memory: \"96Mi\"")
            && gamma.contains("cpu: \"1500m\""),
        "{gamma}"
    );
    // The validator is strict: a field Kubernetes does not know fails.
    let sts = dir.join("alpha/statefulset.yaml");
    let good = std::fs::read_to_string(&sts).unwrap();
    std::fs::write(
        &sts,
        good.replace("  replicas: 1", "  replicas: 1\n  replica: 1"),
    )
    .unwrap();
    assert!(!validate(std::slice::from_ref(&sts)).status.success());
    std::fs::write(&sts, &good).unwrap();
    // Our lint: clean, as JSON too.
    let out = home.ctl(&["--json", "doctor", "--kubernetes", dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["findings"], serde_json::json!([]));
    // Each tenant's gateway token and the bot token: only in its Secret.
    let mut secrets: Vec<(String, String)> = Vec::new();
    for p in ["alpha", "beta", "gamma"] {
        let cfg = std::fs::read_to_string(home.state_dir(p).join("openclaw.json")).unwrap();
        let token = cfg
            .split("token: \"")
            .nth(1)
            .and_then(|t| t.split('"').next());
        let token = token.or_else(|| {
            cfg.split("\"token\": \"")
                .nth(1)
                .and_then(|t| t.split('"').next())
        });
        secrets.push((p.to_string(), token.expect("a generated token").to_string()));
    }
    secrets.push(("beta".into(), "123456:beta-bot-secret".into()));
    for (tenant, secret) in &secrets {
        let mut seen_in = Vec::new();
        for f in resources(&dir) {
            if std::fs::read_to_string(&f)
                .unwrap()
                .contains(secret.as_str())
            {
                seen_in.push(f.strip_prefix(&dir).unwrap().display().to_string());
            }
        }
        assert_eq!(seen_in, vec![format!("{tenant}/secret.yaml")], "{secret}");
    }
    // A secret pasted into a seed is named by the lint (exit 1).
    let cm = dir.join("gamma/configmap.yaml");
    let text = std::fs::read_to_string(&cm).unwrap();
    std::fs::write(
        &cm,
        text.replace(
            "\"mode\": \"local\"",
            "\"mode\": \"local\", \"password\": \"hunter2-hunter2\"",
        ),
    )
    .unwrap();
    let out = home.ctl(&["doctor", "--kubernetes", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("k8s-secret-in-configmap"),
        "{}",
        stdout(&out)
    );
}
