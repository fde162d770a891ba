//! The networks Purser pays on: named public ones and the local devnet, each with its
//! USDC contract and that contract's EIP-712 domain.

use std::path::Path;
use std::str::FromStr;

use alloy_primitives::Address;
use serde::{Deserialize, Serialize};

/// Why a network could not be selected or read.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// Not one of `base`, `base-sepolia`, `local`.
    #[error("unknown network {0:?}: expected base, base-sepolia or local")]
    Unknown(String),
    /// `local` needs the devnet's config file.
    #[error(
        "network local needs the devnet config (run `purser devnet`, then pass --chain-config)"
    )]
    MissingConfig,
    /// The config file could not be read.
    #[error("chain config {path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
}

/// One EVM network and its USDC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Purser's name for it: `base`, `base-sepolia`, `local`.
    pub name: String,
    /// The chain id.
    pub chain_id: u64,
    /// The USDC contract.
    pub usdc: Address,
    /// The EIP-712 domain name of that contract.
    pub token_name: String,
    /// The EIP-712 domain version of that contract.
    pub token_version: String,
    /// The x402 v1 network name, where the protocol has one.
    pub v1_name: Option<String>,
}

impl Network {
    /// Base mainnet.
    pub fn base() -> Network {
        Network {
            name: "base".into(),
            chain_id: 8453,
            usdc: address("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
            token_name: "USD Coin".into(),
            token_version: "2".into(),
            v1_name: Some("base".into()),
        }
    }

    /// Base Sepolia. Its USDC's domain name is "USDC", not "USD Coin": signatures
    /// made with the wrong one are the classic "invalid signature".
    pub fn base_sepolia() -> Network {
        Network {
            name: "base-sepolia".into(),
            chain_id: 84532,
            usdc: address("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
            token_name: "USDC".into(),
            token_version: "2".into(),
            v1_name: Some("base-sepolia".into()),
        }
    }

    /// A named network; `local` comes from the devnet's config.
    pub fn named(name: &str, config: Option<&ChainConfig>) -> Result<Network, NetworkError> {
        match name {
            "base" => Ok(Network::base()),
            "base-sepolia" => Ok(Network::base_sepolia()),
            "local" => config
                .map(ChainConfig::network)
                .ok_or(NetworkError::MissingConfig),
            other => Err(NetworkError::Unknown(other.to_owned())),
        }
    }

    /// The internal ledger rail: a payment between two wallets of one Purser server,
    /// settled on its ledger at once, with no chain. Its authorization is the same
    /// EIP-3009 `TransferWithAuthorization`, signed in a domain of its own (name
    /// `Purser Ledger`, version `1`, chain id 0 — which no EVM chain can have —
    /// and [`ledger_asset`] as the verifying contract), so a signature for one rail
    /// can never be replayed on the other.
    pub fn ledger() -> Network {
        Network {
            name: "ledger".into(),
            chain_id: LEDGER_CHAIN_ID,
            usdc: ledger_asset(),
            token_name: "Purser Ledger".into(),
            token_version: "1".into(),
            v1_name: Some(LEDGER_V1_NAME.into()),
        }
    }

    /// Whether this is the internal ledger rail.
    pub fn is_ledger(&self) -> bool {
        self.chain_id == LEDGER_CHAIN_ID
    }

    /// The CAIP-2 id, as x402 v2 names networks: `eip155:<chain id>`, or
    /// [`LEDGER_NETWORK`] for the ledger rail.
    pub fn caip2(&self) -> String {
        if self.is_ledger() {
            LEDGER_NETWORK.to_owned()
        } else {
            format!("eip155:{}", self.chain_id)
        }
    }

    /// Whether an x402 network field names this network (CAIP-2, or the v1 name).
    pub fn is(&self, network: &str) -> bool {
        network == self.caip2() || self.v1_name.as_deref() == Some(network)
    }
}

/// The x402 network id of the internal ledger rail (v2, CAIP-2 shaped).
pub use purser_types::x402::LEDGER_NETWORK;
/// Its v1 network name.
pub const LEDGER_V1_NAME: &str = "purser-ledger";
/// The chain id in its EIP-712 domain: 0, which EIP-155 leaves to no chain.
pub const LEDGER_CHAIN_ID: u64 = 0;

/// The ledger rail's `asset`: the address `keccak256("purser:ledger:USDC")` ends
/// with. It holds no contract; it names USDC on a Purser ledger.
pub fn ledger_asset() -> Address {
    Address::from_word(alloy_primitives::keccak256(b"purser:ledger:USDC"))
}

fn address(text: &str) -> Address {
    // The constants above are well-formed; a typo would fail every test that uses them.
    Address::from_str(text).unwrap_or_default()
}

/// What `purser devnet` writes and `purser serve --chain local` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainConfig {
    /// The chain id.
    pub chain_id: u64,
    /// The node's JSON-RPC URL.
    pub rpc_url: String,
    /// The USDC contract.
    pub usdc: Address,
    /// Its EIP-712 domain name.
    pub token_name: String,
    /// Its EIP-712 domain version.
    pub token_version: String,
    /// The block the token was deployed in: deposits are scanned from there.
    pub deploy_block: u64,
    /// A funded development key that may pay gas for settlements (devnet only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relayer_key: Option<String>,
}

impl ChainConfig {
    /// The network this config describes.
    pub fn network(&self) -> Network {
        Network {
            name: "local".into(),
            chain_id: self.chain_id,
            usdc: self.usdc,
            token_name: self.token_name.clone(),
            token_version: self.token_version.clone(),
            v1_name: None,
        }
    }

    /// Reads a config file.
    pub fn load(path: &Path) -> Result<ChainConfig, NetworkError> {
        let error = |message: String| NetworkError::Config {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_networks_carry_their_usdc_domains() {
        let base = Network::named("base", None).unwrap();
        assert_eq!(base.caip2(), "eip155:8453");
        assert_eq!(base.token_name, "USD Coin");
        assert_eq!(
            base.usdc.to_checksum(None),
            "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
        );
        let sepolia = Network::named("base-sepolia", None).unwrap();
        assert_eq!(sepolia.caip2(), "eip155:84532");
        assert_eq!(sepolia.token_name, "USDC");
        assert!(sepolia.is("base-sepolia") && sepolia.is("eip155:84532") && !sepolia.is("base"));
        assert!(matches!(
            Network::named("local", None),
            Err(NetworkError::MissingConfig)
        ));
        let ledger = Network::ledger();
        assert_eq!(ledger.caip2(), "purser:ledger");
        assert!(ledger.is("purser:ledger") && ledger.is("purser-ledger") && !base.is_ledger());
        assert_ne!(ledger.usdc, Address::ZERO);
        assert!(matches!(
            Network::named("mainnet", None),
            Err(NetworkError::Unknown(_))
        ));
    }
}
