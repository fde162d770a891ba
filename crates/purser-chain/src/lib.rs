//! Purser's EVM layer.
//!
//! - [`mandate`]: the EIP-712 form of an intent mandate, its digest, and offline
//!   verification of a signed mandate.
//! - [`eip3009`]: `TransferWithAuthorization` / `CancelAuthorization` typed data over a
//!   token's domain; signature parsing and recovery.
//! - [`exact`]: x402's `exact` scheme checks that need no chain.
//! - [`network`]: `base`, `base-sepolia` and `local` with their USDC and its domain;
//!   the devnet's [`network::ChainConfig`].
//! - [`client`]: the USDC client over JSON-RPC (alloy), every call bounded in time.
//! - [`devnet`]: starts anvil and deploys the project's TestUSDC.

pub mod client;
pub mod devnet;
pub mod eip3009;
pub mod exact;
pub mod mandate;
pub mod network;

use std::str::FromStr;

use alloy_primitives::Address;

/// Why a string is not an EVM address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an EVM address: expected 0x followed by 40 hex digits")]
pub struct AddressError;

/// Parses `0x` + 40 hex digits (any case; a mixed-case address must carry a valid
/// EIP-55 checksum) and returns it in EIP-55 form.
pub fn checksum_address(text: &str) -> Result<String, AddressError> {
    let hex = text.strip_prefix("0x").ok_or(AddressError)?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AddressError);
    }
    let mixed =
        hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
    let address = if mixed {
        Address::parse_checksummed(text, None).map_err(|_| AddressError)?
    } else {
        Address::from_str(text).map_err(|_| AddressError)?
    };
    Ok(address.to_checksum(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_checksummed() {
        let lower = "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913";
        let checksummed = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
        assert_eq!(checksum_address(lower).as_deref(), Ok(checksummed));
        assert_eq!(checksum_address(checksummed).as_deref(), Ok(checksummed));
        assert!(
            checksum_address("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02914").is_err(),
            "bad checksum"
        );
        for bad in [
            "",
            "0x",
            "833589fcd6edb6e08f4c7c32d4f71b54bda02913",
            "0x1234",
            "0xzz3589fcd6edb6e08f4c7c32d4f71b54bda02913",
        ] {
            assert!(checksum_address(bad).is_err(), "{bad}");
        }
    }
}
