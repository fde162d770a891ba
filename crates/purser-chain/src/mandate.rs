//! Intent mandates as EIP-712 typed data.
//!
//! The owner's wallet key signs this struct (domain `{name: "Purser Intent
//! Mandate", version: "1"}`, no chain id: a mandate is about a budget, not a rail):
//!
//! ```solidity
//! struct IntentMandate {
//!     address wallet;          // the wallet's address, which must be the signer
//!     string  agentId;         // agt_…
//!     bytes32 descriptionHash; // keccak256(UTF-8 description)
//!     string  asset;           // "USDC"
//!     uint256 limitAmount;     // atomic units (6 decimals)
//!     uint256 maxAmountPerTx;  // atomic units; 0 = no cap
//!     bytes32 hostsHash;       // keccak256(normalized patterns, sorted, joined by "\n")
//!     uint64  validFrom;       // Unix seconds
//!     uint64  validUntil;      // Unix seconds
//!     bytes32 nonce;
//! }
//! ```
//!
//! Anyone holding a [`SignedMandate`] can recompute the digest and recover the
//! signer without asking Purser: that is what payees will rely on.

use std::str::FromStr;

use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain, sol};
use purser_types::{AgentId, Hash32, MandateTerms, SignedMandate};

/// The EIP-712 domain name.
pub const DOMAIN_NAME: &str = "Purser Intent Mandate";
/// The EIP-712 domain version.
pub const DOMAIN_VERSION: &str = "1";

sol! {
    /// The signed form of a mandate's terms.
    struct IntentMandate {
        address wallet;
        string agentId;
        bytes32 descriptionHash;
        string asset;
        uint256 limitAmount;
        uint256 maxAmountPerTx;
        bytes32 hostsHash;
        uint64 validFrom;
        uint64 validUntil;
        bytes32 nonce;
    }
}

/// Why a mandate could not be hashed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MandateError {
    /// The wallet address is not a 20-byte hex address.
    #[error("the wallet address is not a valid EVM address")]
    BadAddress,
    /// A validity time is before 1970.
    #[error("validity times must be after 1970")]
    BadTime,
    /// The signature is not 65 bytes of hex, or recovers no key.
    #[error("the signature is malformed")]
    BadSignature,
    /// The digest of the terms is not the one stated.
    #[error("the mandate hash does not match its terms (the terms were changed)")]
    HashMismatch,
    /// The signature is valid but by another key than the wallet's.
    #[error("the signature was made by {0}, not by the wallet")]
    WrongSigner(String),
}

fn domain() -> Eip712Domain {
    eip712_domain! { name: DOMAIN_NAME, version: DOMAIN_VERSION, }
}

/// keccak256 of the normalized host patterns, sorted and joined by newlines.
pub fn hosts_hash(hosts: &[String]) -> B256 {
    let mut sorted = hosts.to_vec();
    sorted.sort();
    keccak256(sorted.join("\n").as_bytes())
}

fn seconds(at: purser_types::UnixMs) -> Result<u64, MandateError> {
    u64::try_from(at.millis().div_euclid(1000)).map_err(|_| MandateError::BadTime)
}

/// The EIP-712 signing hash of a mandate.
pub fn mandate_digest(
    wallet_address: &str,
    agent: AgentId,
    terms: &MandateTerms,
    nonce: &Hash32,
) -> Result<[u8; 32], MandateError> {
    let typed = IntentMandate {
        wallet: Address::from_str(wallet_address).map_err(|_| MandateError::BadAddress)?,
        agentId: agent.to_string(),
        descriptionHash: keccak256(terms.description.as_bytes()),
        asset: terms.currency.code().to_owned(),
        limitAmount: U256::from(terms.limit_amount.atomic()),
        maxAmountPerTx: U256::from(terms.max_amount_per_tx.map_or(0, |c| c.atomic())),
        hostsHash: hosts_hash(&terms.host_allowlist),
        validFrom: seconds(terms.valid_from)?,
        validUntil: seconds(terms.valid_until)?,
        nonce: B256::from(nonce.0),
    };
    Ok(typed.eip712_signing_hash(&domain()).0)
}

/// `0x`-hex of a digest.
pub fn digest_hex(digest: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(digest))
}

/// The address that produced `signature` over `digest`.
pub fn recover_signer(digest: &[u8; 32], signature: &str) -> Result<Address, MandateError> {
    let bytes =
        hex::decode(signature.trim_start_matches("0x")).map_err(|_| MandateError::BadSignature)?;
    let signature =
        Signature::try_from(bytes.as_slice()).map_err(|_| MandateError::BadSignature)?;
    signature
        .recover_address_from_prehash(&B256::from(*digest))
        .map_err(|_| MandateError::BadSignature)
}

/// Verifies a signed mandate offline: the stated hash is the digest of the terms,
/// and the signature recovers to the wallet's address. Returns the signer.
pub fn verify(signed: &SignedMandate) -> Result<String, MandateError> {
    let digest = mandate_digest(
        &signed.wallet_address,
        signed.agent_id,
        &signed.terms,
        &signed.nonce,
    )?;
    if !digest_hex(&digest).eq_ignore_ascii_case(&signed.mandate_hash) {
        return Err(MandateError::HashMismatch);
    }
    let signer = recover_signer(&digest, &signed.signature)?;
    let wallet = Address::from_str(&signed.wallet_address).map_err(|_| MandateError::BadAddress)?;
    if signer != wallet {
        return Err(MandateError::WrongSigner(signer.to_checksum(None)));
    }
    Ok(signer.to_checksum(None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use purser_signer::WalletKey;
    use purser_types::{Currency, MandateId, UnixMs, Usdc};

    fn terms() -> MandateTerms {
        MandateTerms {
            description: "Pay for WHOIS API calls".into(),
            category: None,
            currency: Currency::Usdc,
            limit_amount: Usdc::from_whole(5).unwrap(),
            max_amount_per_tx: None,
            host_allowlist: vec!["api.whois.example".into()],
            valid_from: UnixMs(1_800_000_000_000),
            valid_until: UnixMs(1_800_003_600_000),
        }
    }

    fn signed(key: &WalletKey) -> SignedMandate {
        let agent = AgentId::from_bytes([7; 16]);
        let nonce = Hash32([9; 32]);
        let wallet = key.address_checksummed();
        let digest = mandate_digest(&wallet, agent, &terms(), &nonce).unwrap();
        SignedMandate {
            mandate_id: MandateId::from_bytes([1; 16]),
            wallet_address: wallet,
            agent_id: agent,
            terms: terms(),
            nonce,
            mandate_hash: digest_hex(&digest),
            signature: key.sign_digest(&digest).unwrap(),
        }
    }

    #[test]
    fn a_signed_mandate_verifies_offline_and_any_change_breaks_it() {
        let key = WalletKey::generate().unwrap();
        let good = signed(&key);
        assert_eq!(verify(&good), Ok(key.address_checksummed()));
        let json = serde_json::to_string(&good).unwrap();
        let round_trip: SignedMandate = serde_json::from_str(&json).unwrap();
        assert_eq!(verify(&round_trip), Ok(key.address_checksummed()));

        let mut wider = good.clone();
        wider.terms.limit_amount = Usdc::from_whole(500).unwrap();
        assert_eq!(verify(&wider), Err(MandateError::HashMismatch));
        let mut longer = good.clone();
        longer.terms.valid_until = UnixMs(1_900_000_000_000);
        assert_eq!(verify(&longer), Err(MandateError::HashMismatch));
        let mut more_hosts = good.clone();
        more_hosts.terms.host_allowlist.push("evil.example".into());
        assert_eq!(verify(&more_hosts), Err(MandateError::HashMismatch));

        let other = WalletKey::generate().unwrap();
        let mut forged = good.clone();
        let digest = mandate_digest(
            &forged.wallet_address,
            forged.agent_id,
            &forged.terms,
            &forged.nonce,
        )
        .unwrap();
        forged.signature = other.sign_digest(&digest).unwrap();
        assert!(matches!(verify(&forged), Err(MandateError::WrongSigner(_))));
        let mut garbled = good;
        garbled.signature = "0x1234".into();
        assert_eq!(verify(&garbled), Err(MandateError::BadSignature));
    }

    #[test]
    fn the_digest_is_stable() {
        // Pinned so that a change to the typed data is a deliberate, visible break.
        let digest = mandate_digest(
            "0x0000000000000000000000000000000000000001",
            AgentId::from_bytes([7; 16]),
            &terms(),
            &Hash32([9; 32]),
        )
        .unwrap();
        assert_eq!(digest_hex(&digest).len(), 66);
        assert_eq!(hosts_hash(&["b".into(), "a".into()]), keccak256(b"a\nb"));
    }
}
