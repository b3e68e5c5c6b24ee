//! Device identity (spec `protocol.md` §4): Ed25519 signatures over the v3
//! or v2 payload, device id = hex SHA-256 of the raw public key,
//! base64url encodings, ±120 s skew, the connection's nonce.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::protocol::{ErrorShape, now_ms};

/// Largest accepted distance between `signedAt` and now.
pub const MAX_SKEW_MS: u64 = 120_000;

/// `connect.params.device`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceProof {
    /// Hex SHA-256 of the raw public key.
    pub id: String,
    /// Raw 32-byte key, base64url (standard base64 and padding accepted).
    pub public_key: String,
    /// Signature, base64url.
    pub signature: String,
    /// The challenge `ts` that was signed.
    pub signed_at: u64,
    /// The challenge nonce.
    pub nonce: String,
}

/// What the signed payload is built from (besides the proof).
#[derive(Debug, Clone)]
pub struct SignedFields<'a> {
    /// `client.id`.
    pub client_id: &'a str,
    /// `client.mode`.
    pub client_mode: &'a str,
    /// Role as sent (default `operator`).
    pub role: &'a str,
    /// Scopes as sent, in order.
    pub scopes: &'a [String],
    /// First of `auth.token`, `auth.deviceToken`, `auth.bootstrapToken`.
    pub token: &'a str,
    /// `client.platform`.
    pub platform: Option<&'a str>,
    /// `client.deviceFamily`.
    pub device_family: Option<&'a str>,
}

fn normalize(field: Option<&str>) -> String {
    field
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// `v3|deviceId|clientId|mode|role|scopes|signedAt|token|nonce|platform|family`.
pub fn payload_v3(device_id: &str, signed_at: u64, nonce: &str, f: &SignedFields<'_>) -> String {
    format!(
        "{}|{}|{}",
        payload_v2(device_id, signed_at, nonce, f).replacen("v2|", "v3|", 1),
        normalize(f.platform),
        normalize(f.device_family)
    )
}

/// `v2|deviceId|clientId|mode|role|scopes|signedAt|token|nonce`.
pub fn payload_v2(device_id: &str, signed_at: u64, nonce: &str, f: &SignedFields<'_>) -> String {
    format!(
        "v2|{device_id}|{}|{}|{}|{}|{signed_at}|{}|{nonce}",
        f.client_id,
        f.client_mode,
        f.role,
        f.scopes.join(","),
        f.token
    )
}

/// Decodes base64url, also accepting `+`, `/` and `=` padding.
pub fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let norm: String = s
        .trim()
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_");
    URL_SAFE_NO_PAD.decode(norm).ok()
}

/// base64url without padding.
pub fn encode_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Lowercase hex SHA-256 of the raw public key.
pub fn device_id_of(raw_key: &[u8]) -> String {
    Sha256::digest(raw_key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn fail(message: &str, code: &str, reason: &str) -> ErrorShape {
    ErrorShape::invalid(message).with_details(json!({"code": code, "reason": reason}))
}

/// Verifies a device proof against the connection's `nonce`, in the spec's
/// order of checks; returns the raw public key.
pub fn verify(
    proof: &DeviceProof,
    nonce: &str,
    fields: &SignedFields<'_>,
) -> Result<Vec<u8>, ErrorShape> {
    let key_bytes = decode_b64(&proof.public_key)
        .filter(|k| k.len() == 32)
        .ok_or_else(|| {
            fail(
                "device public key invalid",
                "DEVICE_AUTH_PUBLIC_KEY_INVALID",
                "device-public-key",
            )
        })?;
    if device_id_of(&key_bytes) != proof.id.to_ascii_lowercase() {
        return Err(fail(
            "device identity mismatch",
            "DEVICE_AUTH_DEVICE_ID_MISMATCH",
            "device-id-mismatch",
        ));
    }
    if now_ms().abs_diff(proof.signed_at) > MAX_SKEW_MS {
        return Err(fail(
            "device signature expired",
            "DEVICE_AUTH_SIGNATURE_EXPIRED",
            "device-signature-stale",
        ));
    }
    let sent_nonce = proof.nonce.trim();
    if sent_nonce.is_empty() {
        return Err(fail(
            "device nonce required",
            "DEVICE_AUTH_NONCE_REQUIRED",
            "device-nonce-missing",
        ));
    }
    if sent_nonce != nonce {
        return Err(fail(
            "device nonce mismatch",
            "DEVICE_AUTH_NONCE_MISMATCH",
            "device-nonce-mismatch",
        ));
    }
    let key: [u8; 32] = key_bytes.clone().try_into().expect("length checked");
    let key = VerifyingKey::from_bytes(&key).map_err(|_| {
        fail(
            "device public key invalid",
            "DEVICE_AUTH_PUBLIC_KEY_INVALID",
            "device-public-key",
        )
    })?;
    let invalid = || {
        fail(
            "device signature invalid",
            "DEVICE_AUTH_SIGNATURE_INVALID",
            "device-signature",
        )
    };
    let sig = decode_b64(&proof.signature)
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(invalid)?;
    let id = proof.id.to_ascii_lowercase();
    for payload in [
        payload_v3(&id, proof.signed_at, sent_nonce, fields),
        payload_v2(&id, proof.signed_at, sent_nonce, fields),
    ] {
        if key.verify_strict(payload.as_bytes(), &sig).is_ok() {
            return Ok(key_bytes);
        }
    }
    Err(invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
    const PUBLIC: &str = "ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ";
    const ID: &str = "65b60673d6ed884bf01c2c222d82ada0740f29ac3355d6a925c81f17f47a27b8";
    const NONCE: &str = "3f1c2a9e-5b7d-4c1e-9a0b-2d4e6f8a1c3b";
    const TS: u64 = 1_767_225_600_000;

    fn seed() -> [u8; 32] {
        (0..32)
            .map(|i| u8::from_str_radix(&SEED[2 * i..2 * i + 2], 16).unwrap())
            .collect::<Vec<_>>()
            .try_into()
            .unwrap()
    }

    fn tui_scopes() -> Vec<String> {
        [
            "operator.admin",
            "operator.read",
            "operator.write",
            "operator.approvals",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn the_spec_vector_matches() {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed());
        assert_eq!(encode_b64(key.verifying_key().as_bytes()), PUBLIC);
        assert_eq!(device_id_of(key.verifying_key().as_bytes()), ID);
        let scopes = tui_scopes();
        let v3 = payload_v3(
            ID,
            TS,
            NONCE,
            &SignedFields {
                client_id: "openclaw-tui",
                client_mode: "ui",
                role: "operator",
                scopes: &scopes,
                token: "secret-gateway-token",
                platform: Some("linux"),
                device_family: Some("Linux"),
            },
        );
        assert_eq!(
            v3,
            format!(
                "v3|{ID}|openclaw-tui|ui|operator|operator.admin,operator.read,operator.write,operator.approvals|{TS}|secret-gateway-token|{NONCE}|linux|linux"
            )
        );
        assert_eq!(
            encode_b64(&key.sign(v3.as_bytes()).to_bytes()),
            "Vjq12wxRloCckNHsSlcQa5dwDZfJadixjG3nWD7mbhGgABsDiiqnM22caq_A320hDEiepyQK4YviFQnOT4gtBw"
        );
        let read = vec!["operator.read".to_string()];
        let v2 = payload_v2(
            ID,
            TS,
            NONCE,
            &SignedFields {
                client_id: "cli",
                client_mode: "cli",
                role: "operator",
                scopes: &read,
                token: "",
                platform: None,
                device_family: None,
            },
        );
        assert_eq!(
            encode_b64(&key.sign(v2.as_bytes()).to_bytes()),
            "w01hj9BZRdBnB1bBkBwh77mHU6UjI6lEkkXBFSg4W_PuwPHNR1w2PfPNpTi0aS6Gue8MPQa3dt4480z61p3cAQ"
        );
    }

    fn proof_now(
        key: &ed25519_dalek::SigningKey,
        fields: &SignedFields<'_>,
        v3: bool,
    ) -> DeviceProof {
        use ed25519_dalek::Signer;
        let ts = now_ms();
        let id = device_id_of(key.verifying_key().as_bytes());
        let payload = if v3 {
            payload_v3(&id, ts, NONCE, fields)
        } else {
            payload_v2(&id, ts, NONCE, fields)
        };
        DeviceProof {
            id,
            public_key: encode_b64(key.verifying_key().as_bytes()),
            signature: encode_b64(&key.sign(payload.as_bytes()).to_bytes()),
            signed_at: ts,
            nonce: NONCE.into(),
        }
    }

    #[test]
    fn v3_and_v2_verify_and_each_check_fails_with_its_code() {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed());
        let scopes = tui_scopes();
        let fields = SignedFields {
            client_id: "openclaw-tui",
            client_mode: "ui",
            role: "operator",
            scopes: &scopes,
            token: "t",
            platform: Some(" Linux "),
            device_family: None,
        };
        assert!(verify(&proof_now(&key, &fields, true), NONCE, &fields).is_ok());
        assert!(verify(&proof_now(&key, &fields, false), NONCE, &fields).is_ok());
        let code = |p: &DeviceProof, nonce: &str| {
            verify(p, nonce, &fields).unwrap_err().details.unwrap()["code"].clone()
        };
        let good = proof_now(&key, &fields, true);
        let mut p = good.clone();
        p.id = "00".repeat(32);
        assert_eq!(code(&p, NONCE), "DEVICE_AUTH_DEVICE_ID_MISMATCH");
        let mut p = good.clone();
        p.signed_at -= 121_000;
        assert_eq!(code(&p, NONCE), "DEVICE_AUTH_SIGNATURE_EXPIRED");
        let mut p = good.clone();
        p.nonce = " ".into();
        assert_eq!(code(&p, NONCE), "DEVICE_AUTH_NONCE_REQUIRED");
        assert_eq!(code(&good, "other"), "DEVICE_AUTH_NONCE_MISMATCH");
        let other = SignedFields {
            scopes: &[],
            ..fields.clone()
        };
        assert_eq!(
            verify(&good, NONCE, &other).unwrap_err().details.unwrap()["code"],
            "DEVICE_AUTH_SIGNATURE_INVALID"
        );
        let mut p = good.clone();
        p.public_key = "short".into();
        assert_eq!(code(&p, NONCE), "DEVICE_AUTH_PUBLIC_KEY_INVALID");
        // Standard base64 with padding is accepted too.
        let mut p = good;
        p.public_key =
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().as_bytes());
        assert!(verify(&p, NONCE, &fields).is_ok());
    }
}
