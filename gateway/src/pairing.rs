//! Device pairing and device tokens (spec `protocol.md` §6): the store of
//! pending and paired devices (`<stateDir>/devices/pending.json` and
//! `paired.json`, written atomically, 0600), silent approval of local
//! devices, pending requests with 8-character codes for the rest, one
//! device token per (device, role), and the `device.*` methods.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::secrets_equal;
use crate::methods::Caller;
use crate::protocol::{ErrorShape, now_ms, uuid_v4};
use crate::server::Gateway;

/// Pending requests expire after 5 minutes.
pub const PENDING_TTL_MS: u64 = 300_000;
/// Pairing code alphabet: no 0/O/1/I.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A device waiting for approval.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    /// Request id (a UUID).
    pub request_id: String,
    /// The 8-character code `openclaw pairing approve` takes.
    pub code: String,
    /// Device id.
    pub device_id: String,
    /// Raw public key, base64url.
    pub public_key: String,
    /// `client.displayName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `client.platform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// `client.mode`.
    pub client_mode: String,
    /// Requested role.
    pub role: String,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Where it connected from.
    pub remote_ip: String,
    /// Created, ms since the epoch.
    pub ts: u64,
}

/// A device token, stored. Its `Debug` hides the token.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeviceToken {
    /// The token (32 random bytes, base64url). Never leaves the store except
    /// in the device's own `hello-ok`.
    pub token: String,
    /// Role.
    pub role: String,
    /// Scopes it carries.
    pub scopes: Vec<String>,
    /// Issued, ms.
    pub created_at_ms: u64,
    /// Revoked, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<u64>,
}

/// An approved device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Paired {
    /// Device id.
    pub device_id: String,
    /// Raw public key, base64url.
    pub public_key: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// `client.mode`.
    pub client_mode: String,
    /// Main role.
    pub role: String,
    /// Approved roles.
    pub roles: Vec<String>,
    /// Approved scopes.
    pub scopes: Vec<String>,
    /// `silent` or `operator`.
    pub approved_via: String,
    /// Tokens by role.
    #[serde(default)]
    pub tokens: BTreeMap<String, DeviceToken>,
    /// First seen, ms.
    pub created_at_ms: u64,
    /// Approved, ms.
    pub approved_at_ms: u64,
    /// Last connect, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at_ms: Option<u64>,
    /// A node's approved command surface (`node.pair.approve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_surface: Option<NodeSurface>,
    /// A node's declared surface waiting for approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_node_surface: Option<PendingSurface>,
    /// What a node last said about itself (kept while it is offline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeFacts>,
}

/// An approved node surface.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NodeSurface {
    /// Capabilities.
    pub caps: Vec<String>,
    /// Commands.
    pub commands: Vec<String>,
    /// First approved, ms.
    pub created_at_ms: u64,
    /// Last approved, ms.
    pub approved_at_ms: u64,
}

/// A node surface waiting for an operator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PendingSurface {
    /// Request id (`openclaw nodes approve <requestId>`).
    pub request_id: String,
    /// Declared capabilities.
    pub caps: Vec<String>,
    /// Declared commands (those policy lets an operator approve).
    pub commands: Vec<String>,
    /// Declared permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Value>,
    /// Filed, ms.
    pub ts: u64,
}

/// A node's own facts from its last connect.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeFacts {
    /// `client.version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `client.deviceFamily`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_family: Option<String>,
    /// `client.modelIdentifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_identifier: Option<String>,
    /// Where it last connected from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    /// Last `node.host.stats`, with `updatedAtMs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_stats: Option<Value>,
    /// Last connect, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_connected_at_ms: Option<u64>,
    /// Last disconnect, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_disconnected_at_ms: Option<u64>,
}

/// The pairing store of one gateway.
#[derive(Debug, Default)]
pub struct Store {
    dir: PathBuf,
    /// Pending requests by request id.
    pub pending: BTreeMap<String, Pending>,
    /// Paired devices by device id.
    pub paired: BTreeMap<String, Paired>,
    /// The writer thread, once attached: saves leave the lock (and the async
    /// runtime) at once, and the thread writes the newest snapshot.
    writer: Option<crate::persist::Writer>,
}

fn read_map<T: for<'de> Deserialize<'de>>(path: &Path) -> BTreeMap<String, T> {
    crate::persist::read_map(
        path,
        "device store",
        "devices paired before must pair again unless the file is restored",
    )
}

/// A new pairing code.
pub fn new_code() -> String {
    let mut rng = rand::rng();
    (0..8)
        .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// A new device token: 32 random bytes, base64url.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    crate::identity::encode_b64(&bytes)
}

impl Store {
    /// Loads `<stateDir>/devices/`.
    pub fn load(state_dir: &Path) -> Self {
        let dir = state_dir.join("devices");
        Self {
            pending: read_map(&dir.join("pending.json")),
            paired: read_map(&dir.join("paired.json")),
            dir,
            writer: None,
        }
    }

    /// Saves from now on through a writer thread (the gateway's store).
    pub fn with_writer(mut self) -> Self {
        self.writer = crate::persist::Writer::spawn("device-store");
        self
    }

    /// Writes both files atomically (0600): through the writer thread when
    /// one is attached (the caller's lock is not held across the I/O),
    /// else at once.
    pub fn save(&self) -> std::io::Result<()> {
        let pending = serde_json::to_vec_pretty(&self.pending).expect("pending serializes");
        let paired = serde_json::to_vec_pretty(&self.paired).expect("paired serializes");
        let snap = vec![
            (self.dir.join("pending.json"), pending),
            (self.dir.join("paired.json"), paired),
        ];
        crate::persist::save(self.writer.as_ref(), snap)
    }

    /// Drops pending requests older than the TTL.
    pub fn expire(&mut self, now: u64) {
        self.pending
            .retain(|_, p| now.saturating_sub(p.ts) < PENDING_TTL_MS);
    }

    /// Files (or refreshes) a pending request for this device and ask.
    pub fn request(&mut self, mut req: Pending) -> Pending {
        self.expire(now_ms());
        if let Some(old) = self
            .pending
            .values()
            .find(|p| p.device_id == req.device_id)
            .cloned()
        {
            if old.role == req.role && old.scopes == req.scopes {
                return old;
            }
            self.pending.remove(&old.request_id);
        }
        while self.pending.values().any(|p| p.code == req.code) {
            req.code = new_code();
        }
        self.pending.insert(req.request_id.clone(), req.clone());
        req
    }

    /// Pairs a device from its pending request.
    pub fn approve(&mut self, request_id: &str, via: &str) -> Option<Paired> {
        let p = self.pending.remove(request_id)?;
        let now = now_ms();
        let entry = self
            .paired
            .entry(p.device_id.clone())
            .or_insert_with(|| Paired {
                device_id: p.device_id.clone(),
                public_key: p.public_key.clone(),
                display_name: p.display_name.clone(),
                platform: p.platform.clone(),
                client_id: p.client_id.clone(),
                client_mode: p.client_mode.clone(),
                role: p.role.clone(),
                roles: Vec::new(),
                scopes: Vec::new(),
                approved_via: via.to_string(),
                tokens: BTreeMap::new(),
                created_at_ms: p.ts,
                approved_at_ms: now,
                last_seen_at_ms: None,
                node_surface: None,
                pending_node_surface: None,
                node: None,
            });
        entry.public_key = p.public_key;
        if !entry.roles.contains(&p.role) {
            entry.roles.push(p.role);
        }
        for s in p.scopes {
            if !entry.scopes.contains(&s) {
                entry.scopes.push(s);
            }
        }
        entry.approved_at_ms = now;
        entry.approved_via = via.to_string();
        Some(entry.clone())
    }

    /// The device token of `(device, role)`, issued if missing or revoked.
    pub fn token_for(
        &mut self,
        device_id: &str,
        role: &str,
        scopes: &[String],
    ) -> Option<DeviceToken> {
        let dev = self.paired.get_mut(device_id)?;
        let tok = dev
            .tokens
            .entry(role.to_string())
            .or_insert_with(|| DeviceToken {
                token: new_token(),
                role: role.to_string(),
                scopes: scopes.to_vec(),
                created_at_ms: now_ms(),
                revoked_at_ms: None,
            });
        if tok.revoked_at_ms.is_some() {
            *tok = DeviceToken {
                token: new_token(),
                role: role.to_string(),
                scopes: scopes.to_vec(),
                created_at_ms: now_ms(),
                revoked_at_ms: None,
            };
        }
        Some(tok.clone())
    }

    /// True if `token` is the live device token of `(device, role)`.
    pub fn check_token(&self, device_id: &str, role: &str, token: &str) -> bool {
        self.paired
            .get(device_id)
            .and_then(|d| d.tokens.get(role))
            .is_some_and(|t| t.revoked_at_ms.is_none() && secrets_equal(token, &t.token))
    }
}

impl std::fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceToken")
            .field("token", &"[redacted]")
            .field("role", &self.role)
            .field("scopes", &self.scopes)
            .field("created_at_ms", &self.created_at_ms)
            .field("revoked_at_ms", &self.revoked_at_ms)
            .finish()
    }
}

/// A paired device as the wire shows it: tokens without their secret.
pub fn paired_wire(p: &Paired, connected: bool) -> Value {
    let mut v = serde_json::to_value(p).expect("paired serializes");
    let tokens: Vec<Value> = p
        .tokens
        .values()
        .map(|t| {
            let mut o = json!({"role": t.role, "scopes": t.scopes, "createdAtMs": t.created_at_ms});
            if let Some(r) = t.revoked_at_ms {
                o["revokedAtMs"] = r.into();
            }
            o
        })
        .collect();
    v["tokens"] = tokens.into();
    v["connected"] = connected.into();
    v
}

fn param<'a>(params: &'a Value, key: &str, method: &str) -> Result<&'a str, ErrorShape> {
    params[key]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ErrorShape::invalid(format!("invalid {method} params: {key} is required")))
}

fn not_found(what: &str) -> ErrorShape {
    ErrorShape::invalid(format!("unknown {what}"))
}

/// `device.pair.list|approve|reject|remove`, `device.token.revoke`.
pub fn dispatch(
    gw: &Gateway,
    caller: &Caller,
    method: &str,
    params: &Value,
) -> Result<Value, ErrorShape> {
    let mut store = gw
        .pairing
        .lock()
        .map_err(|_| ErrorShape::invalid("pairing store unavailable"))?;
    store.expire(now_ms());
    let save = |store: &Store| {
        store
            .save()
            .map_err(|e| ErrorShape::invalid(format!("cannot save the pairing store: {e}")))
    };
    match method {
        "device.pair.list" => {
            let connected = gw.connected_devices();
            Ok(json!({
                "pending": store.pending.values().collect::<Vec<_>>(),
                "paired": store.paired.values().map(|p| paired_wire(p, connected.contains(&p.device_id))).collect::<Vec<_>>(),
            }))
        }
        "device.pair.approve" => {
            let id = param(params, "requestId", method)?;
            // Pairing a device for a role other than operator (a node)
            // needs admin, as OpenClaw's `devices approve` expects.
            if store.pending.get(id).is_some_and(|p| p.role != "operator")
                && !caller.scopes.iter().any(|s| s == crate::scopes::ADMIN)
            {
                return Err(ErrorShape::invalid("device pairing approval denied"));
            }
            let device = store
                .approve(id, "operator")
                .ok_or_else(|| not_found("requestId"))?;
            save(&store)?;
            drop(store);
            gw.broadcast(
                "device.pair.resolved",
                json!({"requestId": id, "deviceId": device.device_id, "decision": "approved", "ts": now_ms()}),
                false,
            );
            Ok(json!({"requestId": id, "device": paired_wire(&device, false)}))
        }
        "device.pair.reject" => {
            let id = param(params, "requestId", method)?;
            let p = store
                .pending
                .remove(id)
                .ok_or_else(|| not_found("requestId"))?;
            save(&store)?;
            drop(store);
            let resolved = json!({"requestId": id, "deviceId": p.device_id, "decision": "rejected", "ts": now_ms()});
            gw.broadcast("device.pair.resolved", resolved.clone(), false);
            Ok(resolved)
        }
        "device.pair.remove" => {
            let id = param(params, "deviceId", method)?;
            store
                .paired
                .remove(id)
                .ok_or_else(|| not_found("deviceId"))?;
            save(&store)?;
            Ok(json!({"deviceId": id, "removed": true}))
        }
        "device.token.revoke" => {
            let id = param(params, "deviceId", method)?;
            let role = param(params, "role", method)?;
            let tok = store
                .paired
                .get_mut(id)
                .and_then(|d| d.tokens.get_mut(role))
                .ok_or_else(|| not_found("device token"))?;
            let at = now_ms();
            tok.revoked_at_ms = Some(at);
            save(&store)?;
            Ok(json!({"deviceId": id, "role": role, "revokedAtMs": at}))
        }
        _ => Err(ErrorShape::invalid(format!("unknown method: {method}"))),
    }
}

/// A new pending request from a connect.
pub fn pending_from(
    device_id: &str,
    public_key: &str,
    client: &crate::protocol::ClientInfo,
    role: &str,
    scopes: &[String],
    ip: &str,
) -> Pending {
    Pending {
        request_id: uuid_v4(),
        code: new_code(),
        device_id: device_id.to_string(),
        public_key: public_key.to_string(),
        display_name: client.display_name.clone(),
        platform: Some(client.platform.clone()),
        client_id: client.id.clone(),
        client_mode: client.mode.clone(),
        role: role.to_string(),
        scopes: scopes.to_vec(),
        remote_ip: ip.to_string(),
        ts: now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(device: &str, scopes: &[&str]) -> Pending {
        Pending {
            request_id: uuid_v4(),
            code: new_code(),
            device_id: device.into(),
            public_key: "k".into(),
            display_name: None,
            platform: None,
            client_id: "cli".into(),
            client_mode: "cli".into(),
            role: "operator".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            remote_ip: "10.0.0.2".into(),
            ts: now_ms(),
        }
    }

    #[test]
    fn the_writer_thread_saves_off_the_callers_path_and_finishes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::load(dir.path()).with_writer();
        for i in 0..50 {
            s.pending.clear();
            s.request(pending_from(
                &format!("dev{i}"),
                "key",
                &serde_json::from_value(serde_json::json!({
                    "id": "cli", "mode": "cli", "version": "1", "platform": "linux"
                }))
                .unwrap(),
                "operator",
                &[],
                "10.0.0.1",
            ));
            s.save().unwrap();
        }
        drop(s); // waits for the last write
        let text = std::fs::read_to_string(dir.path().join("devices/pending.json")).unwrap();
        assert!(text.contains("dev49"), "{text}");
        assert!(!text.contains("dev48"), "the newest snapshot wins");
    }

    #[test]
    fn a_torn_store_is_moved_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let devices = dir.path().join("devices");
        std::fs::create_dir_all(&devices).unwrap();
        std::fs::write(devices.join("paired.json"), "{\"dev\": {\"deviceId\": ").unwrap();
        let s = Store::load(dir.path());
        assert!(s.paired.is_empty());
        s.save().unwrap();
        let aside: Vec<_> = std::fs::read_dir(&devices)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("paired.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(
            std::fs::read_to_string(devices.join(&aside[0])).unwrap(),
            "{\"dev\": {\"deviceId\": "
        );
    }

    #[test]
    fn requests_approvals_tokens_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::load(dir.path());
        let a = s.request(req("d1", &["operator.read"]));
        assert_eq!(a.code.len(), 8);
        assert!(a.code.bytes().all(|b| CODE_ALPHABET.contains(&b)));
        // The same ask reuses the request; a different one supersedes it.
        assert_eq!(
            s.request(req("d1", &["operator.read"])).request_id,
            a.request_id
        );
        let b = s.request(req("d1", &["operator.admin"]));
        assert_ne!(b.request_id, a.request_id);
        assert_eq!(s.pending.len(), 1);
        let paired = s.approve(&b.request_id, "operator").unwrap();
        assert_eq!(paired.scopes, vec!["operator.admin"]);
        let t = s.token_for("d1", "operator", &paired.scopes).unwrap();
        assert!(s.check_token("d1", "operator", &t.token));
        assert!(!s.check_token("d1", "operator", "nope"));
        assert_eq!(
            s.token_for("d1", "operator", &[]).unwrap().token,
            t.token,
            "re-returned, not reissued"
        );
        s.save().unwrap();
        let again = Store::load(dir.path());
        assert!(again.check_token("d1", "operator", &t.token));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("devices/paired.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let wire = paired_wire(&again.paired["d1"], true);
        assert!(
            !wire.to_string().contains(&t.token),
            "the wire form never carries the token"
        );
    }

    #[test]
    fn old_requests_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::load(dir.path());
        let mut old = req("d2", &[]);
        old.ts -= PENDING_TTL_MS + 1;
        s.pending.insert(old.request_id.clone(), old);
        s.expire(now_ms());
        assert!(s.pending.is_empty());
    }
}
