//! A local chain for development and tests: anvil on loopback with the project's
//! TestUSDC (EIP-3009, 6 decimals, EIP-712 version "2") deployed and funded.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::SolValue;
use tokio::process::{Child, Command};

use crate::client::{ChainError, IUsdc};
use crate::network::ChainConfig;

/// Anvil's well-known development keys (mnemonic "test test … junk"). Public
/// knowledge: never hold real money with them.
pub const DEV_KEYS: [&str; 4] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];

/// The chain id anvil uses.
pub const DEVNET_CHAIN_ID: u64 = 31337;

/// How to start a devnet.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// The anvil binary.
    pub anvil: PathBuf,
    /// The loopback port (0: a free one).
    pub port: u16,
    /// forge's artifact of TestUSDC (`contracts/out/TestUSDC.sol/TestUSDC.json`).
    pub artifact: PathBuf,
    /// The token's EIP-712 name.
    pub token_name: String,
    /// Addresses to fund, in atomic units.
    pub fund: Vec<(Address, U256)>,
}

/// A running devnet; anvil stops when this is dropped.
#[derive(Debug)]
pub struct Devnet {
    child: Child,
    /// Its config, as written for `purser serve --chain local`.
    pub config: ChainConfig,
}

impl Devnet {
    /// Starts anvil, deploys TestUSDC and funds the addresses asked for.
    pub async fn start(options: &DevnetOptions) -> Result<Devnet, ChainError> {
        let port = match options.port {
            0 => free_port()?,
            port => port,
        };
        let child = Command::new(&options.anvil)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                ChainError::Invalid(format!("cannot start {}: {e}", options.anvil.display()))
            })?;
        let rpc_url = format!("http://127.0.0.1:{port}");
        let mut devnet = Devnet {
            child,
            config: ChainConfig {
                chain_id: DEVNET_CHAIN_ID,
                rpc_url: rpc_url.clone(),
                usdc: Address::ZERO,
                token_name: options.token_name.clone(),
                token_version: "2".into(),
                deploy_block: 0,
                relayer_key: Some(DEV_KEYS[1].into()),
            },
        };
        wait_until_up(&rpc_url).await?;
        let (usdc, block) = deploy_token(&rpc_url, &options.artifact, &options.token_name).await?;
        devnet.config.usdc = usdc;
        devnet.config.deploy_block = block;
        for (to, amount) in &options.fund {
            mint(&rpc_url, usdc, *to, *amount).await?;
        }
        Ok(devnet)
    }

    /// Stops anvil now.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn free_port() -> Result<u16, ChainError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ChainError::Invalid(format!("no free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| ChainError::Invalid(format!("no free port: {e}")))
}

async fn wait_until_up(rpc_url: &str) -> Result<(), ChainError> {
    let url = rpc_url
        .parse()
        .map_err(|_| ChainError::Invalid(rpc_url.to_owned()))?;
    let provider = ProviderBuilder::new().connect_http(url);
    for _ in 0..100 {
        if provider.get_chain_id().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ChainError::Unavailable(format!(
        "anvil did not answer at {rpc_url}"
    )))
}

fn deployer(rpc_url: &str) -> Result<impl Provider, ChainError> {
    let signer: PrivateKeySigner = DEV_KEYS[0]
        .parse()
        .map_err(|_| ChainError::Invalid("dev key".into()))?;
    let url = rpc_url
        .parse()
        .map_err(|_| ChainError::Invalid(rpc_url.to_owned()))?;
    Ok(ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url))
}

/// Reads the deployable bytecode from forge's artifact.
pub fn artifact_bytecode(artifact: &Path) -> Result<Bytes, ChainError> {
    let bad = |m: String| ChainError::Invalid(format!("{}: {m}", artifact.display()));
    let text = std::fs::read_to_string(artifact)
        .map_err(|e| bad(format!("{e} (build it: contracts/ci.sh)")))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let hex = json["bytecode"]["object"]
        .as_str()
        .ok_or_else(|| bad("no bytecode.object".into()))?;
    hex.parse::<Bytes>().map_err(|e| bad(e.to_string()))
}

/// Deploys TestUSDC named `name`; returns its address and the block it is in.
pub async fn deploy_token(
    rpc_url: &str,
    artifact: &Path,
    name: &str,
) -> Result<(Address, u64), ChainError> {
    let mut code = artifact_bytecode(artifact)?.to_vec();
    code.extend_from_slice(&(name.to_owned(),).abi_encode_params());
    let provider = deployer(rpc_url)?;
    let request = TransactionRequest::default().with_deploy_code(code);
    let receipt = provider
        .send_transaction(request)
        .await
        .map_err(|e| ChainError::Unavailable(e.to_string()))?
        .get_receipt()
        .await
        .map_err(|e| ChainError::Unavailable(e.to_string()))?;
    let address = receipt
        .contract_address
        .ok_or_else(|| ChainError::Reverted("TestUSDC was not deployed".into()))?;
    Ok((address, receipt.block_number.unwrap_or_default()))
}

/// Mints test USDC (the deployer is the token's owner).
pub async fn mint(
    rpc_url: &str,
    token: Address,
    to: Address,
    amount: U256,
) -> Result<(), ChainError> {
    let provider = deployer(rpc_url)?;
    let usdc = IUsdc::new(token, &provider);
    let receipt = usdc
        .mint(to, amount)
        .send()
        .await
        .map_err(|e| ChainError::Unavailable(e.to_string()))?
        .get_receipt()
        .await
        .map_err(|e| ChainError::Unavailable(e.to_string()))?;
    if receipt.status() {
        Ok(())
    } else {
        Err(ChainError::Reverted("mint".into()))
    }
}
