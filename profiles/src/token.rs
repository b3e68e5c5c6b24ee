//! Shared-secret gateway tokens: generation, and the constant-time
//! comparison every check of one uses.

use rand::RngExt;

/// A fresh gateway token: 24 random bytes as 48 lowercase hex characters,
/// the shape `openclaw onboard` writes into `gateway.auth.token`.
pub fn generate_gateway_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True if `provided` equals `expected`, in constant time: both are
/// compared as SHA-256 digests, so neither their content nor their length
/// leaks through timing.
pub fn secrets_equal(provided: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let a = Sha256::digest(provided.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_48_hex_chars_and_differ() {
        let a = super::generate_gateway_token();
        let b = super::generate_gateway_token();
        assert_eq!(a.len(), 48);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
