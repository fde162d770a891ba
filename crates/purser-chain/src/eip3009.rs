//! EIP-3009 `TransferWithAuthorization` and `CancelAuthorization` as EIP-712 typed
//! data over a token's domain: what x402's `exact` scheme signs and settles.

use std::str::FromStr;

use alloy_primitives::{Address, B256, Signature, U256};
use alloy_sol_types::{Eip712Domain, SolStruct, sol};
use purser_types::x402::ExactAuthorization;

use crate::network::Network;

sol! {
    /// EIP-3009's transfer authorization.
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// EIP-3009's cancellation of an unused authorization.
    struct CancelAuthorization {
        address authorizer;
        bytes32 nonce;
    }
}

/// Why an authorization or signature could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    /// A field is malformed.
    #[error("authorization {0} is malformed")]
    Field(&'static str),
    /// The signature is not 65 bytes of hex, or does not recover.
    #[error("the signature is malformed")]
    Signature,
}

/// The EIP-712 domain of a token.
pub fn token_domain(name: &str, version: &str, chain_id: u64, token: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(name.to_owned().into()),
        Some(version.to_owned().into()),
        Some(U256::from(chain_id)),
        Some(token),
        None,
    )
}

/// The domain of a network's USDC.
pub fn usdc_domain(network: &Network) -> Eip712Domain {
    token_domain(
        &network.token_name,
        &network.token_version,
        network.chain_id,
        network.usdc,
    )
}

/// An authorization in typed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorization {
    /// The payer.
    pub from: Address,
    /// The payee.
    pub to: Address,
    /// Atomic units.
    pub value: U256,
    /// Unix seconds; valid strictly after.
    pub valid_after: U256,
    /// Unix seconds; valid strictly before.
    pub valid_before: U256,
    /// Unique per payer.
    pub nonce: B256,
}

fn address_field(text: &str, name: &'static str) -> Result<Address, AuthorizationError> {
    let hex = text
        .strip_prefix("0x")
        .ok_or(AuthorizationError::Field(name))?;
    if hex.len() != 40 {
        return Err(AuthorizationError::Field(name));
    }
    Address::from_str(text).map_err(|_| AuthorizationError::Field(name))
}

fn number_field(text: &str, name: &'static str) -> Result<U256, AuthorizationError> {
    if text.is_empty() || text.len() > 78 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthorizationError::Field(name));
    }
    U256::from_str_radix(text, 10).map_err(|_| AuthorizationError::Field(name))
}

impl Authorization {
    /// Reads the wire form strictly: 0x addresses, decimal numbers, a 32-byte nonce.
    pub fn from_wire(wire: &ExactAuthorization) -> Result<Authorization, AuthorizationError> {
        let nonce_hex = wire
            .nonce
            .strip_prefix("0x")
            .filter(|h| h.len() == 64)
            .ok_or(AuthorizationError::Field("nonce"))?;
        let nonce = B256::from_str(nonce_hex).map_err(|_| AuthorizationError::Field("nonce"))?;
        Ok(Authorization {
            from: address_field(&wire.from, "from")?,
            to: address_field(&wire.to, "to")?,
            value: number_field(&wire.value, "value")?,
            valid_after: number_field(&wire.valid_after, "validAfter")?,
            valid_before: number_field(&wire.valid_before, "validBefore")?,
            nonce,
        })
    }

    /// The wire form (checksummed addresses, decimal strings).
    pub fn to_wire(&self) -> ExactAuthorization {
        ExactAuthorization {
            from: self.from.to_checksum(None),
            to: self.to.to_checksum(None),
            value: self.value.to_string(),
            valid_after: self.valid_after.to_string(),
            valid_before: self.valid_before.to_string(),
            nonce: format!("{:#x}", self.nonce),
        }
    }

    /// The EIP-712 digest the payer signs.
    pub fn digest(&self, domain: &Eip712Domain) -> B256 {
        TransferWithAuthorization {
            from: self.from,
            to: self.to,
            value: self.value,
            validAfter: self.valid_after,
            validBefore: self.valid_before,
            nonce: self.nonce,
        }
        .eip712_signing_hash(domain)
    }
}

/// The digest that cancels an unused authorization.
pub fn cancel_digest(domain: &Eip712Domain, authorizer: Address, nonce: B256) -> B256 {
    CancelAuthorization { authorizer, nonce }.eip712_signing_hash(domain)
}

/// Parses a 65-byte `r ‖ s ‖ v` signature.
pub fn parse_signature(text: &str) -> Result<Signature, AuthorizationError> {
    let hex = text
        .strip_prefix("0x")
        .ok_or(AuthorizationError::Signature)?;
    if hex.len() != 130 {
        return Err(AuthorizationError::Signature);
    }
    let bytes = alloy_primitives::hex::decode(hex).map_err(|_| AuthorizationError::Signature)?;
    Signature::try_from(bytes.as_slice()).map_err(|_| AuthorizationError::Signature)
}

/// The address that signed `digest` (libsecp256k1 where enabled: this is the hot
/// part of `/verify`).
pub fn recover(digest: &B256, signature: &Signature) -> Result<Address, AuthorizationError> {
    signature
        .recover_address_from_prehash(digest)
        .map_err(|_| AuthorizationError::Signature)
}

#[cfg(test)]
mod tests {
    use purser_signer::WalletKey;

    use super::*;

    fn sample(from: Address) -> Authorization {
        Authorization {
            from,
            to: Address::repeat_byte(0x22),
            value: U256::from(10_000u64),
            valid_after: U256::ZERO,
            valid_before: U256::from(2_000_000_000u64),
            nonce: B256::repeat_byte(7),
        }
    }

    #[test]
    fn signs_and_recovers_over_the_usdc_domain() {
        let key = WalletKey::generate().unwrap();
        let authorization = sample(key.address());
        let domain = usdc_domain(&Network::base_sepolia());
        let digest = authorization.digest(&domain);
        let signature = parse_signature(&key.sign_digest(&digest.0).unwrap()).unwrap();
        assert_eq!(recover(&digest, &signature).unwrap(), key.address());
        // The other USDC domain name gives another digest: a different signer.
        let wrong = authorization.digest(&usdc_domain(&Network::base()));
        assert_ne!(recover(&wrong, &signature).unwrap(), key.address());
    }

    #[test]
    fn the_wire_form_round_trips_and_is_strict() {
        let authorization = sample(Address::repeat_byte(0x11));
        let wire = authorization.to_wire();
        assert_eq!(Authorization::from_wire(&wire).unwrap(), authorization);
        for (field, value) in [
            ("value", "-1"),
            ("value", "1.0"),
            ("value", ""),
            ("nonce", "0x07"),
            ("from", "0x1234"),
            ("validBefore", "0x10"),
        ] {
            let mut bad = wire.clone();
            match field {
                "value" => bad.value = value.into(),
                "nonce" => bad.nonce = value.into(),
                "from" => bad.from = value.into(),
                _ => bad.valid_before = value.into(),
            }
            assert!(Authorization::from_wire(&bad).is_err(), "{field}={value}");
        }
        assert!(parse_signature("0x1234").is_err());
    }
}
