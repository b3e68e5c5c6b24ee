//! Kubernetes manifests for tenants that outgrow one host, and the lint
//! `doctor --kubernetes` runs on them.
//!
//! One namespace per tenant holds a single-replica StatefulSet (the single
//! writer of its state), a `ReadWriteOncePod` claim for the state dir, a
//! Secret with the tokens (never the ConfigMap), a ConfigMap seed that the
//! gateway copies only when its config does not exist yet
//! (`OPENCLAW_CONFIG_SEED`), a ClusterIP Service, a NetworkPolicy and a
//! `kustomization.yaml`. Probes run `openclaw gateway healthcheck`, which
//! checks the JSON body of `/healthz` and `/readyz`, not just a 200.
//! `enableServiceLinks: false`: Kubernetes would otherwise inject
//! `OPENCLAW_GATEWAY_PORT=tcp://…` for a Service named `openclaw-gateway`,
//! which the gateway reads as its port.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The container's user and group (non-root).
pub const RUN_AS: u64 = 10001;
/// Where the state dir is mounted.
pub const STATE_MOUNT: &str = "/state";
/// Where the ConfigMap seed is mounted.
pub const SEED_MOUNT: &str = "/seed";

/// One tenant to export.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Profile name as `openclawctl` knows it.
    pub profile: String,
    /// The gateway's port (container, Service and probes).
    pub port: u16,
    /// The profile's config as parsed (`openclaw.json`); its secrets go to
    /// the Secret (a tenant without a gateway token or password gets a
    /// generated token: a gateway beyond loopback needs auth).
    pub config: Value,
    /// The profile's limits: the container's `resources` (memory and CPU;
    /// a pod has no field for tasks or open files).
    pub limits: openclaw_profiles::limits::Limits,
}

/// The container's `resources`: the tenant's memory-max and cpu-quota as
/// limits (memory defaults to 256Mi), requests no higher than the limits.
fn resources(limits: &openclaw_profiles::limits::Limits) -> Value {
    const REQUEST_MEMORY: u64 = 32 << 20;
    const REQUEST_CPU_PERCENT: u32 = 5;
    let request = openclaw_profiles::limits::Limits {
        memory_max: Some(
            limits
                .memory_max
                .map_or(REQUEST_MEMORY, |m| m.min(REQUEST_MEMORY)),
        ),
        cpu_quota: Some(
            limits
                .cpu_quota
                .map_or(REQUEST_CPU_PERCENT, |c| c.min(REQUEST_CPU_PERCENT)),
        ),
        ..Default::default()
    };
    let mut out = json!({
        "requests": {"cpu": request.kubernetes_cpu(), "memory": request.kubernetes_memory()},
        "limits": {"memory": limits.kubernetes_memory().unwrap_or_else(|| "256Mi".into())}
    });
    if let Some(cpu) = limits.kubernetes_cpu() {
        out["limits"]["cpu"] = cpu.into();
    }
    out
}

/// Export options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The gateway image.
    pub image: String,
    /// Size of the state claim (`1Gi`).
    pub storage: String,
}

/// What an export writes, and what the user must know about it.
#[derive(Debug, Default)]
pub struct Export {
    /// Relative path → contents.
    pub files: BTreeMap<PathBuf, String>,
    /// Things done on the user's behalf (a generated token, secrets moved).
    pub notes: Vec<String>,
}

/// Secret keys the gateway reads from its environment, by config path.
const ENV_SECRETS: &[(&[&str], &str)] = &[
    (&["gateway", "auth", "token"], "OPENCLAW_GATEWAY_TOKEN"),
    (
        &["gateway", "auth", "password"],
        "OPENCLAW_GATEWAY_PASSWORD",
    ),
    (&["channels", "telegram", "botToken"], "TELEGRAM_BOT_TOKEN"),
    (&["channels", "discord", "token"], "DISCORD_BOT_TOKEN"),
];

/// A Kubernetes name for `profile` (DNS-1123 label: lower case, digits,
/// `-`), or why it cannot be one.
pub fn k8s_name(profile: &str) -> Result<String, String> {
    let name: String = profile
        .chars()
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let ok = !name.is_empty()
        && name.len() <= 50
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(name)
    } else {
        Err(format!(
            "profile `{profile}` cannot be a Kubernetes name (`{name}`): names are lower-case letters, digits and `-`, at most 50, starting and ending with a letter or digit"
        ))
    }
}

/// The namespace of a tenant.
pub fn namespace(name: &str) -> String {
    format!("openclaw-{name}")
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// The seed: the config with every secret taken out (those the gateway
/// reads from its environment go to the Secret; others are named in the
/// notes), `tokenFile` paths dropped (they name files of this host).
fn seed(tenant: &Tenant, secret: &mut BTreeMap<String, String>, notes: &mut Vec<String>) -> Value {
    for (path, env) in ENV_SECRETS {
        if let Some(s) = get(&tenant.config, path).and_then(Value::as_str)
            && !s.trim().is_empty()
        {
            secret.insert((*env).to_string(), s.to_string());
        }
    }
    let mut left_out = Vec::new();
    let cleaned = strip(&tenant.config, &mut Vec::new(), &mut left_out);
    for path in left_out {
        let moved = ENV_SECRETS
            .iter()
            .any(|(p, env)| p.join(".") == path && secret.contains_key(*env));
        if !moved {
            notes.push(format!(
                "{}: `{path}` (a secret, or a file of this host) has no environment variable the gateway reads; it was left out of the seed (set it in the live config)",
                tenant.profile
            ));
        }
    }
    cleaned
}

fn strip(v: &Value, at: &mut Vec<String>, left_out: &mut Vec<String>) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, val) in m {
                at.push(k.clone());
                // `tokenFile` names a file of this host (and is a secret key).
                if openclaw_profiles::config::is_secret_key(k) && val.is_string() {
                    left_out.push(at.join("."));
                } else {
                    out.insert(k.clone(), strip(val, at, left_out));
                }
                at.pop();
            }
            Value::Object(out)
        }
        Value::Array(a) => a.iter().map(|x| strip(x, at, left_out)).collect(),
        other => other.clone(),
    }
}

fn labels(name: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "openclaw-gateway",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "openclawctl",
    })
}

fn healthcheck(port: u16, ready: bool) -> Value {
    let mut cmd = vec![
        "/openclaw".to_string(),
        "gateway".into(),
        "healthcheck".into(),
        "--port".into(),
        port.to_string(),
    ];
    if ready {
        cmd.push("--ready".into());
    }
    json!({ "command": cmd })
}

/// Renders every tenant (one directory each) and the top-level
/// `kustomization.yaml`.
pub fn render(tenants: &[Tenant], opts: &Options) -> Result<Export, String> {
    let mut export = Export::default();
    let mut dirs = Vec::new();
    for t in tenants {
        let name = k8s_name(&t.profile)?;
        let ns = namespace(&name);
        let mut secret = BTreeMap::new();
        let seed = seed(t, &mut secret, &mut export.notes);
        if !secret.contains_key("OPENCLAW_GATEWAY_TOKEN")
            && !secret.contains_key("OPENCLAW_GATEWAY_PASSWORD")
        {
            secret.insert(
                "OPENCLAW_GATEWAY_TOKEN".into(),
                openclaw_profiles::token::generate_gateway_token(),
            );
            export.notes.push(format!(
                "{}: no gateway token configured; a new one was generated into the Secret (clients need it: it binds beyond loopback)",
                t.profile
            ));
        }
        if t.limits.tasks_max.is_some() || t.limits.nofile.is_some() {
            export.notes.push(format!(
                "{}: tasks-max and nofile have no per-pod field in Kubernetes (the kubelet's podPidsLimit and the runtime's nofile are node-wide); set them on the nodes",
                t.profile
            ));
        }
        let seed_text = serde_json::to_string_pretty(&seed).unwrap_or_default() + "\n";
        let meta =
            |kind_name: &str| json!({"name": kind_name, "namespace": ns, "labels": labels(&name)});
        let docs: Vec<(&str, Value)> = vec![
            (
                "namespace.yaml",
                json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": ns, "labels": labels(&name)}}),
            ),
            (
                "secret.yaml",
                json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                       "metadata": meta("openclaw-gateway"), "stringData": secret}),
            ),
            (
                "configmap.yaml",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": meta("openclaw-gateway-seed"),
                       "data": {"openclaw.json": seed_text}}),
            ),
            ("statefulset.yaml", statefulset(&name, &ns, t, opts)),
            (
                "service.yaml",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("openclaw-gateway"),
                       "spec": {"type": "ClusterIP", "selector": labels(&name),
                                "ports": [{"name": "gateway", "port": t.port, "targetPort": t.port, "protocol": "TCP"}]}}),
            ),
            (
                "networkpolicy.yaml",
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": meta("openclaw-gateway"),
                "spec": {
                    "podSelector": {"matchLabels": labels(&name)},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{
                        "from": [
                            {"podSelector": {}},
                            {"namespaceSelector": {"matchLabels": {"openclaw.ai/gateway-client": "true"}}}
                        ],
                        "ports": [{"protocol": "TCP", "port": t.port}]
                    }],
                    "egress": [
                        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                        {"ports": [{"protocol": "TCP", "port": 443}]}
                    ]
                }}),
            ),
        ];
        let mut resources = Vec::new();
        for (file, doc) in docs {
            resources.push(file);
            export
                .files
                .insert(Path::new(&name).join(file), to_yaml(&doc));
        }
        export.files.insert(
            Path::new(&name).join("kustomization.yaml"),
            to_yaml(
                &json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                             "namespace": ns, "resources": resources}),
            ),
        );
        dirs.push(name);
    }
    export.files.insert(
        PathBuf::from("kustomization.yaml"),
        to_yaml(
            &json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                         "resources": dirs}),
        ),
    );
    Ok(export)
}

fn statefulset(name: &str, ns: &str, t: &Tenant, opts: &Options) -> Value {
    let port = t.port;
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "openclaw-gateway", "namespace": ns, "labels": labels(name)},
        "spec": {
            // The single writer of the tenant's state.
            "replicas": 1,
            "serviceName": "openclaw-gateway",
            "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": labels(name)},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {
                    "enableServiceLinks": false,
                    "automountServiceAccountToken": false,
                    "terminationGracePeriodSeconds": 15,
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                        "fsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}
                    },
                    "containers": [{
                        "name": "gateway",
                        "image": opts.image,
                        "args": ["gateway", "run", "--bind", "lan", "--port", port.to_string()],
                        "ports": [{"name": "gateway", "containerPort": port, "protocol": "TCP"}],
                        "env": [
                            {"name": "HOME", "value": STATE_MOUNT},
                            {"name": "OPENCLAW_STATE_DIR", "value": STATE_MOUNT},
                            {"name": "OPENCLAW_CONFIG_PATH", "value": format!("{STATE_MOUNT}/openclaw.json")},
                            {"name": "OPENCLAW_CONFIG_SEED", "value": format!("{SEED_MOUNT}/openclaw.json")},
                            {"name": "OPENCLAW_GATEWAY_PORT", "value": port.to_string()}
                        ],
                        "envFrom": [{"secretRef": {"name": "openclaw-gateway"}}],
                        "volumeMounts": [
                            {"name": "state", "mountPath": STATE_MOUNT},
                            {"name": "seed", "mountPath": SEED_MOUNT, "readOnly": true},
                            {"name": "tmp", "mountPath": "/tmp"}
                        ],
                        "resources": resources(&t.limits),
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]}
                        },
                        // Started within 5 minutes, live on /healthz, ready on
                        // /readyz (never restarted for not being ready).
                        "startupProbe": {"exec": healthcheck(port, false), "periodSeconds": 5, "failureThreshold": 60, "timeoutSeconds": 4},
                        "livenessProbe": {"exec": healthcheck(port, false), "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 4},
                        "readinessProbe": {"exec": healthcheck(port, true), "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 4}
                    }],
                    "volumes": [
                        {"name": "seed", "configMap": {"name": "openclaw-gateway-seed"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}
                    ]
                }
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "state", "labels": labels(name)},
                "spec": {
                    "accessModes": ["ReadWriteOncePod"],
                    "resources": {"requests": {"storage": opts.storage}}
                }
            }]
        }
    })
}

/// Block-style YAML for a JSON value. Strings are written in YAML's
/// double-quoted style, which takes JSON's escapes: any string round-trips.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

/// A string `|` writes back exactly: several lines, one final newline, no
/// leading blanks on its first line, no carriage returns or tabs.
fn literal_block(s: &str) -> bool {
    s.contains('\n')
        && s.ends_with('\n')
        && !s.ends_with("\n\n")
        && !s.starts_with([' ', '\n'])
        && !s.contains(['\r', '\t'])
        && s.lines().all(|l| l.trim_end() == l)
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, val) in m {
                let key = scalar(&Value::String(k.clone()));
                let key = if k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
                    && !k.is_empty()
                    && !k.starts_with(['-', '.'])
                {
                    k.clone()
                } else {
                    key
                };
                match val {
                    Value::String(s) if literal_block(s) => {
                        // A literal block keeps a file (the seed) readable.
                        out.push_str(&format!("{pad}{key}: |\n"));
                        for line in s.lines() {
                            out.push_str(&format!("{pad}  {line}\n"));
                        }
                    }
                    val if is_block(val) => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        emit(val, indent + 2, out);
                    }
                    val => out.push_str(&format!("{pad}{key}: {}\n", scalar(val))),
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                if is_block(item) && !item.is_string() {
                    let mut inner = String::new();
                    emit(item, indent + 2, &mut inner);
                    // The first line of the item goes after the dash.
                    let inner = inner.trim_start_matches(' ');
                    out.push_str(&format!("{pad}- {inner}"));
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

/// One lint finding on exported manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable id (`k8s-…`).
    pub id: &'static str,
    /// The file.
    pub file: PathBuf,
    /// What is wrong and what to do.
    pub message: String,
}

/// Reads every `*.yaml`/`*.yml`/`*.json` under `dir` as Kubernetes objects.
fn load(dir: &Path) -> Result<Vec<(PathBuf, Value)>, String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                todo.push(p);
                continue;
            }
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "yaml" | "yml" | "json") {
                continue;
            }
            let text = std::fs::read_to_string(&p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            let docs = yaml_rust2::YamlLoader::load_from_str(&text)
                .map_err(|e| format!("{} is not YAML: {e}", p.display()))?;
            for d in docs {
                out.push((p.clone(), yaml_to_json(&d)));
            }
        }
    }
    Ok(out)
}

fn yaml_to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(r) => r.parse::<f64>().map_or(Value::Null, Value::from),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => a.iter().map(yaml_to_json).collect(),
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    other => yaml_to_json(other).to_string(),
                };
                (key, yaml_to_json(v))
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
        _ => Value::Null,
    }
}

/// What a schema cannot see in a tenant's manifests: one writer per state
/// claim, no secret in a ConfigMap, ports that agree (container, Service,
/// probes, `--port`), probes present, Kubernetes' service links off.
pub fn lint(dir: &Path) -> Result<Vec<Finding>, String> {
    let objects = load(dir)?;
    let mut findings = Vec::new();
    let mut say = |id, file: &Path, message: String| {
        findings.push(Finding {
            id,
            file: file.to_path_buf(),
            message,
        });
    };
    let kind = |o: &Value| o["kind"].as_str().unwrap_or("").to_string();
    // Every Secret value, to find it anywhere else.
    let secret_values: Vec<String> = objects
        .iter()
        .filter(|(_, o)| kind(o) == "Secret")
        .flat_map(|(_, o)| {
            let plain = o["stringData"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values());
            plain
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .filter(|v| v.len() >= 8)
        .collect();
    let mut service_ports: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (_, o) in objects.iter().filter(|(_, o)| kind(o) == "Service") {
        let ns = o["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        for p in o["spec"]["ports"].as_array().into_iter().flatten() {
            service_ports
                .entry(ns.clone())
                .or_default()
                .push(p["targetPort"].as_u64().or(p["port"].as_u64()).unwrap_or(0));
        }
    }
    for (file, o) in &objects {
        let k = kind(o);
        if k == "ConfigMap" {
            for (key, val) in o["data"].as_object().into_iter().flatten() {
                let text = val.as_str().unwrap_or("");
                let leaked = secret_values.iter().any(|s| text.contains(s.as_str()));
                let keyed = openclaw_profiles::config::is_secret_key(key)
                    || serde_json::from_str::<Value>(text)
                        .ok()
                        .is_some_and(|v| has_secret(&v))
                    || json5::from_str::<Value>(text)
                        .ok()
                        .is_some_and(|v| has_secret(&v));
                if leaked || keyed {
                    say(
                        "k8s-secret-in-configmap",
                        file,
                        format!(
                            "ConfigMap `{}` key `{key}` holds a secret: move it to the Secret (ConfigMaps are readable by anyone who can read the namespace's config)",
                            o["metadata"]["name"].as_str().unwrap_or("?")
                        ),
                    );
                }
            }
        }
        if k == "Deployment" || k == "StatefulSet" || k == "ReplicaSet" {
            let spec = &o["spec"];
            let replicas = spec["replicas"].as_u64().unwrap_or(1);
            if replicas > 1 {
                say(
                    "k8s-more-than-one-writer",
                    file,
                    format!(
                        "{k} `{}` runs {replicas} replicas: one gateway owns a state dir; set replicas: 1",
                        o["metadata"]["name"].as_str().unwrap_or("?")
                    ),
                );
            }
            if k == "Deployment" {
                say(
                    "k8s-more-than-one-writer",
                    file,
                    "a Deployment can run two pods at once during a rollout (both writing the state): use a StatefulSet".into(),
                );
            }
            let pod = &spec["template"]["spec"];
            if pod["enableServiceLinks"] != false {
                say(
                    "k8s-service-links",
                    file,
                    "enableServiceLinks is not false: Kubernetes injects OPENCLAW_GATEWAY_PORT=tcp://… for a Service named openclaw-gateway, which the gateway reads as its port".into(),
                );
            }
            let ns = o["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string();
            for c in pod["containers"].as_array().into_iter().flatten() {
                let cname = c["name"].as_str().unwrap_or("?");
                let args: Vec<&str> = c["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let arg_port = args
                    .windows(2)
                    .find(|w| w[0] == "--port")
                    .and_then(|w| w[1].parse::<u64>().ok());
                let mut ports: Vec<(String, u64)> = Vec::new();
                if let Some(p) = arg_port {
                    ports.push(("--port".into(), p));
                }
                for p in c["ports"].as_array().into_iter().flatten() {
                    if let Some(n) = p["containerPort"].as_u64() {
                        ports.push(("containerPort".into(), n));
                    }
                }
                for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                    let pr = &c[probe];
                    if pr.is_null() {
                        if probe != "startupProbe" {
                            say(
                                "k8s-probe-missing",
                                file,
                                format!(
                                    "container `{cname}` has no {probe}: add one running `openclaw gateway healthcheck`{}",
                                    if probe == "readinessProbe" {
                                        " --ready"
                                    } else {
                                        ""
                                    }
                                ),
                            );
                        }
                        continue;
                    }
                    let cmd: Vec<&str> = pr["exec"]["command"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    if let Some(p) = cmd
                        .windows(2)
                        .find(|w| w[0] == "--port")
                        .and_then(|w| w[1].parse::<u64>().ok())
                    {
                        ports.push((probe.into(), p));
                    }
                    if let Some(p) = pr["httpGet"]["port"].as_u64() {
                        ports.push((probe.into(), p));
                    }
                }
                if let Some(svc) = service_ports.get(&ns) {
                    for p in svc {
                        ports.push(("Service targetPort".into(), *p));
                    }
                }
                if let Some((_, first)) = ports.first()
                    && ports.iter().any(|(_, p)| p != first)
                {
                    let list: Vec<String> = ports.iter().map(|(w, p)| format!("{w} {p}")).collect();
                    say(
                        "k8s-ports-disagree",
                        file,
                        format!(
                            "container `{cname}`: ports disagree ({}); the gateway listens on --port only",
                            list.join(", ")
                        ),
                    );
                }
            }
        }
    }
    Ok(findings)
}

fn has_secret(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, val)| {
            (openclaw_profiles::config::is_secret_key(k)
                && val.as_str().is_some_and(|s| !s.is_empty()))
                || has_secret(val)
        }),
        Value::Array(a) => a.iter().any(has_secret),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(profile: &str, port: u16) -> Tenant {
        Tenant {
            profile: profile.into(),
            port,
            config: json!({
                "gateway": {"mode": "local", "port": port, "auth": {"mode": "token", "token": "tok-0123456789abcdef"}},
                "channels": {"telegram": {"botToken": "123456:telegram-secret-value", "dmPolicy": "pairing"}},
                "models": {"providers": {"fakeai": {"baseUrl": "http://127.0.0.1:9/v1", "apiKey": "sk-provider-secret"}}}
            }),
            limits: Default::default(),
        }
    }

    fn opts() -> Options {
        Options {
            image: "openclaw-gateway:test".into(),
            storage: "1Gi".into(),
        }
    }

    #[test]
    fn one_tenant_renders_as_the_golden_files() {
        let export = render(&[tenant("alpha", 19100)], &opts()).unwrap();
        for (path, text) in &export.files {
            insta::assert_snapshot!(path.display().to_string().replace('/', "__"), text);
        }
        insta::assert_snapshot!("notes", export.notes.join("\n"));
    }

    #[test]
    fn limits_become_resources_and_what_has_no_field_is_a_note() {
        use openclaw_profiles::limits::Kind;
        let mut t = tenant("alpha", 19100);
        for (k, v) in [
            (Kind::Memory, "16M"),
            (Kind::Cpu, "250%"),
            (Kind::Tasks, "64"),
        ] {
            t.limits.set(k, v).unwrap();
        }
        let export = render(&[t], &opts()).unwrap();
        let sts = &export
            .files
            .iter()
            .find(|(p, _)| p.ends_with("statefulset.yaml"))
            .unwrap()
            .1;
        let doc: Value = yaml_to_json(&yaml_rust2::YamlLoader::load_from_str(sts).unwrap()[0]);
        let res = &doc["spec"]["template"]["spec"]["containers"][0]["resources"];
        // Requests never exceed the limits.
        assert_eq!(
            res,
            &json!({"requests": {"cpu": "50m", "memory": "16Mi"},
                    "limits": {"memory": "16Mi", "cpu": "2500m"}})
        );
        assert!(
            export
                .notes
                .iter()
                .any(|n| n.contains("tasks-max and nofile")),
            "{:?}",
            export.notes
        );
    }

    #[test]
    fn secrets_appear_only_in_the_secret() {
        let export = render(&[tenant("alpha", 19100)], &opts()).unwrap();
        for secret in [
            "tok-0123456789abcdef",
            "123456:telegram-secret-value",
            "sk-provider-secret",
        ] {
            for (path, text) in &export.files {
                let in_secret = path.ends_with("secret.yaml");
                assert!(
                    !text.contains(secret) || (in_secret && secret != "sk-provider-secret"),
                    "{secret} in {}",
                    path.display()
                );
            }
        }
        assert!(
            export
                .notes
                .iter()
                .any(|n| n.contains("models.providers.fakeai.apiKey"))
        );
    }

    #[test]
    fn the_yaml_reads_back_as_the_same_objects() {
        let doc = json!({"a": {"b": [1, "two: x", {"c": null, "d": []}], "e": {}}, "f": "multi\nline\n", "g-h": true, "weird key": "\"q\""});
        let y = yaml_rust2::YamlLoader::load_from_str(&to_yaml(&doc)).unwrap();
        assert_eq!(yaml_to_json(&y[0]), doc);
    }

    #[test]
    fn lint_passes_our_export_and_names_each_planted_fault() {
        let dir = tempfile::tempdir().unwrap();
        let export = render(&[tenant("alpha", 19100), tenant("beta", 19200)], &opts()).unwrap();
        for (path, text) in &export.files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        assert_eq!(lint(dir.path()).unwrap(), vec![]);
        let sts = dir.path().join("alpha/statefulset.yaml");
        let text = std::fs::read_to_string(&sts).unwrap();
        let bad = text
            .replace("replicas: 1", "replicas: 2")
            .replace("enableServiceLinks: false", "enableServiceLinks: true")
            .replace("containerPort: 19100", "containerPort: 18789");
        let bad = bad.replace("readinessProbe:", "otherProbe:");
        std::fs::write(&sts, bad).unwrap();
        let cm = dir.path().join("beta/configmap.yaml");
        let text = std::fs::read_to_string(&cm).unwrap();
        std::fs::write(
            &cm,
            text.replace(
                "\"mode\": \"token\"",
                "\"mode\": \"token\", \"token\": \"tok-0123456789abcdef\"",
            ),
        )
        .unwrap();
        let ids: Vec<&str> = lint(dir.path())
            .unwrap()
            .iter()
            .map(|f| f.id)
            .collect::<Vec<_>>()
            .leak()
            .to_vec();
        for id in [
            "k8s-more-than-one-writer",
            "k8s-service-links",
            "k8s-ports-disagree",
            "k8s-probe-missing",
            "k8s-secret-in-configmap",
        ] {
            assert!(ids.contains(&id), "{id} not in {ids:?}");
        }
    }

    #[test]
    fn names_that_cannot_be_kubernetes_names_are_refused() {
        assert_eq!(k8s_name("Team_A").unwrap(), "team-a");
        assert!(k8s_name("-x").is_err());
        assert!(k8s_name(&"a".repeat(51)).is_err());
    }
}
