//! Idempotency keys and request fingerprints.

use purser_store::Idempotency;
use purser_types::Hash32;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ServiceError;
use crate::auth::Principal;

/// The longest key accepted, as Stripe does.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;

/// A client's idempotency key: 1-255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a key.
    pub fn parse(text: &str) -> Result<IdempotencyKey, ServiceError> {
        let valid = !text.is_empty()
            && text.len() <= IDEMPOTENCY_KEY_MAX_LEN
            && text.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(IdempotencyKey(text.to_owned()))
        } else {
            Err(ServiceError::InvalidRequest(format!(
                "Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX_LEN} printable ASCII characters without spaces"
            )))
        }
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose keys these are: a key is only ever matched against the same caller's.
pub(crate) fn scope_of(principal: Option<&Principal>) -> String {
    principal.map_or_else(|| "anonymous".to_owned(), |p| p.actor().to_string())
}

/// Binds a key to the operation and its parameters: the same key with different
/// parameters is a conflict, never a silent replay of something else.
pub(crate) fn idempotency(
    principal: Option<&Principal>,
    key: &IdempotencyKey,
    operation: &str,
    params: &impl Serialize,
) -> Result<Idempotency, ServiceError> {
    let params =
        serde_json::to_vec(params).map_err(|e| ServiceError::InvalidRequest(e.to_string()))?;
    let digest = Sha256::new()
        .chain_update(operation.as_bytes())
        .chain_update([0u8])
        .chain_update(&params)
        .finalize();
    Ok(Idempotency {
        scope: scope_of(principal),
        key: key.0.clone(),
        fingerprint: Hash32(digest.into()),
    })
}

/// 128 bits derived from the caller's key: the id of what the key creates beside
/// the ledger (a payment link, a refund), so a retry finds the first one.
pub(crate) fn keyed_id(principal: &Principal, key: &IdempotencyKey, operation: &str) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(scope_of(Some(principal)).as_bytes())
        .chain_update([0u8])
        .chain_update(operation.as_bytes())
        .chain_update([0u8])
        .chain_update(key.0.as_bytes())
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", " ", "a b", "ключ", "a\n"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    #[test]
    fn fingerprints_differ_by_operation_and_parameters() {
        let key = IdempotencyKey::parse("k").unwrap();
        let a = idempotency(None, &key, "fund", &("w", "1")).unwrap();
        let b = idempotency(None, &key, "fund", &("w", "2")).unwrap();
        let c = idempotency(None, &key, "payout", &("w", "1")).unwrap();
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_eq!(a, idempotency(None, &key, "fund", &("w", "1")).unwrap());
    }
}
