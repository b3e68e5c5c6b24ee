//! Validation against OpenClaw's published protocol schema
//! (`tests/vendor/openclaw-protocol-schema/protocol.schema.json`, MIT, see
//! `PROVENANCE.md` there). Every
//! frame a test receives from the gateway goes through [`check_frame`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

/// The vendored schema file, or `OPENCLAW_PROTOCOL_SCHEMA` to try another.
pub fn schema_path() -> PathBuf {
    if let Ok(p) = std::env::var("OPENCLAW_PROTOCOL_SCHEMA") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("vendor/openclaw-protocol-schema/protocol.schema.json")
}

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = schema_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the protocol schema at {}: {e}; it is vendored in the repository (or set OPENCLAW_PROTOCOL_SCHEMA)",
                path.display()
            )
        });
        serde_json::from_str(&text).expect("protocol schema is JSON")
    })
}

/// The compiled validator for `#/definitions/<def>`, built once per process.
fn validator(def: &str) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().expect("schema cache").get(def) {
        return v.clone();
    }
    let root = schema();
    assert!(
        root["definitions"].get(def).is_some(),
        "schema has no definition {def}"
    );
    // A wrapper schema that refers into the full document keeps every
    // nested $ref resolvable.
    let mut wrapper = root.clone();
    let obj = wrapper.as_object_mut().expect("schema is an object");
    obj.remove("oneOf");
    obj.remove("discriminator");
    obj.insert("$ref".into(), json!(format!("#/definitions/{def}")));
    let compiled = Arc::new(jsonschema::validator_for(&wrapper).expect("schema compiles"));
    cache
        .lock()
        .expect("schema cache")
        .insert(def.to_string(), compiled.clone());
    compiled
}

/// Validates `value` against `#/definitions/<def>`; panics listing every
/// violation.
pub fn check_def(def: &str, value: &Value) {
    let validator = validator(def);
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{def} violates the schema:\n{}\nvalue: {value:#}",
        errors.join("\n")
    );
}

/// Validates a frame the gateway sent: the frame itself, and the payloads
/// the schema describes (`hello-ok`, `tick`, `shutdown`).
pub fn check_frame(frame: &Value) {
    check_def("GatewayFrame", frame);
    match frame["type"].as_str() {
        Some("res") if frame["payload"]["type"] == "hello-ok" => {
            check_def("HelloOk", &frame["payload"])
        }
        Some("event") => match frame["event"].as_str() {
            Some("tick") => check_def("TickEvent", &frame["payload"]),
            Some("shutdown") => check_def("ShutdownEvent", &frame["payload"]),
            _ => {}
        },
        _ => {}
    }
}

/// Validates connect params a test client sends, so tests speak what real
/// clients speak.
pub fn check_connect_params(params: &Value) {
    check_def("ConnectParams", params);
}
