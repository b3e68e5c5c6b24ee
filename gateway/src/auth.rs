//! Shared-secret checks. Secrets are compared as SHA-256 digests in
//! constant time, so neither their content nor their length leaks through
//! timing.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// True if `provided` equals `expected`, in constant time.
pub fn secrets_equal(provided: &str, expected: &str) -> bool {
    let a = Sha256::digest(provided.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares() {
        assert!(super::secrets_equal("abc", "abc"));
        assert!(!super::secrets_equal("abc", "abd"));
        assert!(!super::secrets_equal("", "abc"));
    }
}
