//! The bootstrap token's text form, which both ends must agree on.
//!
//! `mgb1.<id>.<secret>.<ca-sha256>`: a lookup id, a random secret (the controller stores only
//! its hash), and the SHA-256 fingerprint of the controller's CA, so an agent can verify the
//! controller before it trusts it (as kubeadm's discovery hash does). User API tokens have the
//! form `mgu1.<id>.<secret>` and carry no fingerprint.

pub const BOOTSTRAP_PREFIX: &str = "mgb1";
pub const USER_PREFIX: &str = "mgu1";

/// A token split into its parts; says nothing yet about whether it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenParts<'a> {
    pub prefix: &'a str,
    pub id: &'a str,
    pub secret: &'a str,
    pub ca_fingerprint: Option<&'a str>,
}

/// Why a token's text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error(
        "unknown token: not a Mangrove token (expected {BOOTSTRAP_PREFIX}.<id>.<secret>.<ca-sha256> or {USER_PREFIX}.<id>.<secret>)"
    )]
    Malformed,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Splits a token into its parts, checking only its shape.
pub fn parse(text: &str) -> Result<TokenParts<'_>, TokenFormatError> {
    let parts: Vec<&str> = text.trim().split('.').collect();
    match parts.as_slice() {
        [p, id, secret, fp] if *p == BOOTSTRAP_PREFIX && is_hex(id, 16) && is_hex(secret, 48) && is_hex(fp, 64) => {
            Ok(TokenParts { prefix: p, id, secret, ca_fingerprint: Some(fp) })
        }
        [p, id, secret] if *p == USER_PREFIX && is_hex(id, 16) && is_hex(secret, 48) => {
            Ok(TokenParts { prefix: p, id, secret, ca_fingerprint: None })
        }
        _ => Err(TokenFormatError::Malformed),
    }
}

/// The text of a bootstrap token.
pub fn bootstrap(id: &str, secret: &str, ca_fingerprint: &str) -> String {
    format!("{BOOTSTRAP_PREFIX}.{id}.{secret}.{ca_fingerprint}")
}

/// The text of a user API token.
pub fn user(id: &str, secret: &str) -> String {
    format!("{USER_PREFIX}.{id}.{secret}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let id = "0123456789abcdef";
        let secret = "ab".repeat(24);
        let fp = "cd".repeat(32);
        let b = bootstrap(id, &secret, &fp);
        assert_eq!(parse(&b).map(|p| p.ca_fingerprint), Ok(Some(fp.as_str())));
        assert_eq!(parse(&user(id, &secret)).map(|p| p.id), Ok(id));
        for bad in ["", "bogus-token", "mgb1.x.y.z", &b[..b.len() - 1], &format!("{b}.extra"), "mgu1..."] {
            assert_eq!(parse(bad), Err(TokenFormatError::Malformed), "{bad}");
        }
    }
}
