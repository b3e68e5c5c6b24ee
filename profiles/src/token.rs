//! Generation of shared-secret gateway tokens.

use rand::RngExt;

/// A fresh gateway token: 24 random bytes as 48 lowercase hex characters,
/// the shape `openclaw onboard` writes into `gateway.auth.token`.
pub fn generate_gateway_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
