//! The USDC client: reads, simulations and sends against one network's node, each
//! bounded in time. A node that is down or slow is an error the caller can name
//! ([`ChainError::Unavailable`]), never a hang.

use std::future::Future;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportErrorKind};
use alloy_primitives::{Address, B256, Signature, U256};
use alloy_sol_types::SolEvent;
use tokio::sync::Mutex;

use crate::eip3009::Authorization;
use crate::network::Network;

// The generated bindings mirror the token's ABI, argument count included.
#[allow(clippy::too_many_arguments)]
mod bindings {
    alloy::sol! {
    /// The parts of USDC (FiatToken v2) Purser calls.
    #[sol(rpc)]
    interface IUsdc {
        event Transfer(address indexed from, address indexed to, uint256 value);
        event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
        function balanceOf(address account) external view returns (uint256);
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
        function transferWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
        function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
        function mint(address to, uint256 amount) external;
    }
    }
}
pub use bindings::IUsdc;

/// What went wrong talking to the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The node did not answer, or not in time.
    #[error("the chain node is unavailable: {0}")]
    Unavailable(String),
    /// The node answered that the call or transaction reverts.
    #[error("reverted: {0}")]
    Reverted(String),
    /// A key or input was unusable.
    #[error("invalid chain input: {0}")]
    Invalid(String),
}

fn from_rpc(error: RpcError<TransportErrorKind>) -> ChainError {
    match error {
        RpcError::ErrorResp(payload) => ChainError::Reverted(payload.message.to_string()),
        other => ChainError::Unavailable(other.to_string()),
    }
}

fn from_contract(error: alloy::contract::Error) -> ChainError {
    match error {
        alloy::contract::Error::TransportError(e) => from_rpc(e),
        other => ChainError::Reverted(other.to_string()),
    }
}

/// A USDC transfer seen in a block: a deposit when `to` is a wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferLog {
    /// The transaction.
    pub tx_hash: B256,
    /// The log's index in its block.
    pub log_index: u64,
    /// The block.
    pub block: u64,
    /// Sender.
    pub from: Address,
    /// Receiver.
    pub to: Address,
    /// Atomic units.
    pub value: U256,
}

/// Timeouts for chain calls.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Each RPC call.
    pub rpc: Duration,
    /// Waiting for a receipt before answering "pending".
    pub receipt: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            rpc: Duration::from_secs(5),
            receipt: Duration::from_secs(30),
        }
    }
}

/// One network's node and, optionally, the relayer key that pays gas for the
/// transactions Purser sends (settlements, payouts, cancellations).
pub struct ChainClient {
    network: Network,
    reader: DynProvider,
    relayer: Option<(Address, DynProvider)>,
    // Sends go one at a time so that each takes the next nonce of the relayer.
    send_lock: Mutex<()>,
    timeouts: Timeouts,
}

impl std::fmt::Debug for ChainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainClient")
            .field("network", &self.network.name)
            .field("relayer", &self.relayer.as_ref().map(|r| r.0))
            .finish_non_exhaustive()
    }
}

async fn bounded<T, E>(
    limit: Duration,
    call: impl Future<Output = Result<T, E>>,
    map: impl FnOnce(E) -> ChainError,
) -> Result<T, ChainError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(map),
        Err(_) => Err(ChainError::Unavailable(format!(
            "no answer within {} ms",
            limit.as_millis()
        ))),
    }
}

impl ChainClient {
    /// A client for `network` at `rpc_url`; with a relayer key it can send.
    pub fn new(
        network: Network,
        rpc_url: &str,
        relayer_key: Option<&str>,
        timeouts: Timeouts,
    ) -> Result<ChainClient, ChainError> {
        let url: url::Url = rpc_url
            .parse()
            .map_err(|_| ChainError::Invalid(format!("RPC URL {rpc_url:?}")))?;
        let reader = ProviderBuilder::new().connect_http(url.clone()).erased();
        let relayer = match relayer_key {
            None => None,
            Some(key) => {
                let signer: PrivateKeySigner = key.trim().parse().map_err(|_| {
                    ChainError::Invalid("the relayer key is not a private key".into())
                })?;
                let address = signer.address();
                // The nonce is asked of the node for every send (sends take turns
                // under `send_lock`): a cached nonce advances even when the send
                // then fails at gas estimation, and every later transaction would
                // wait forever behind the gap.
                let provider = ProviderBuilder::new()
                    .disable_recommended_fillers()
                    .with_gas_estimation()
                    .with_simple_nonce_management()
                    .fetch_chain_id()
                    .wallet(EthereumWallet::from(signer))
                    .connect_http(url)
                    .erased();
                Some((address, provider))
            }
        };
        Ok(ChainClient {
            network,
            reader,
            relayer,
            send_lock: Mutex::new(()),
            timeouts,
        })
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The relayer's address, if there is one.
    pub fn relayer(&self) -> Option<Address> {
        self.relayer.as_ref().map(|r| r.0)
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    fn usdc(&self) -> IUsdc::IUsdcInstance<&DynProvider> {
        IUsdc::new(self.network.usdc, &self.reader)
    }

    fn sender(&self) -> Result<&(Address, DynProvider), ChainError> {
        self.relayer
            .as_ref()
            .ok_or_else(|| ChainError::Invalid("no relayer key is configured".into()))
    }

    /// The node's chain id.
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        bounded(self.timeouts.rpc, self.reader.get_chain_id(), from_rpc).await
    }

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        bounded(self.timeouts.rpc, self.reader.get_block_number(), from_rpc).await
    }

    /// Whether an address holds contract code.
    pub async fn has_code(&self, address: Address) -> Result<bool, ChainError> {
        let code = bounded(
            self.timeouts.rpc,
            self.reader.get_code_at(address).into_future(),
            from_rpc,
        )
        .await?;
        Ok(!code.is_empty())
    }

    /// USDC balance of an address, in atomic units.
    pub async fn balance_of(&self, owner: Address) -> Result<U256, ChainError> {
        let usdc = self.usdc();
        bounded(
            self.timeouts.rpc,
            usdc.balanceOf(owner).call().into_future(),
            from_contract,
        )
        .await
    }

    /// Whether an authorization's nonce is used or canceled.
    pub async fn authorization_used(
        &self,
        authorizer: Address,
        nonce: B256,
    ) -> Result<bool, ChainError> {
        let usdc = self.usdc();
        bounded(
            self.timeouts.rpc,
            usdc.authorizationState(authorizer, nonce)
                .call()
                .into_future(),
            from_contract,
        )
        .await
    }

    fn transfer_call<'a, P: Provider>(
        usdc: &'a IUsdc::IUsdcInstance<P>,
        authorization: &Authorization,
        signature: &Signature,
    ) -> alloy::contract::SolCallBuilder<&'a P, IUsdc::transferWithAuthorizationCall> {
        usdc.transferWithAuthorization(
            authorization.from,
            authorization.to,
            authorization.value,
            authorization.valid_after,
            authorization.valid_before,
            authorization.nonce,
            27 + u8::from(signature.v()),
            signature.r().into(),
            signature.s().into(),
        )
    }

    /// Simulates `transferWithAuthorization` as the relayer (or the zero address)
    /// would send it; `Reverted` carries the token's reason.
    pub async fn simulate_transfer(
        &self,
        authorization: &Authorization,
        signature: &Signature,
    ) -> Result<(), ChainError> {
        let usdc = IUsdc::new(self.network.usdc, &self.reader);
        let from = self.relayer().unwrap_or(Address::ZERO);
        let call = Self::transfer_call(&usdc, authorization, signature).from(from);
        bounded(self.timeouts.rpc, call.call().into_future(), from_contract).await?;
        Ok(())
    }

    /// Sends `transferWithAuthorization` from the relayer; returns the tx hash.
    pub async fn send_transfer(
        &self,
        authorization: &Authorization,
        signature: &Signature,
    ) -> Result<B256, ChainError> {
        let (from, provider) = self.sender()?;
        let usdc = IUsdc::new(self.network.usdc, provider);
        let call = Self::transfer_call(&usdc, authorization, signature).from(*from);
        let _one_at_a_time = self.send_lock.lock().await;
        let pending = bounded(self.timeouts.rpc, call.send(), from_contract).await?;
        Ok(*pending.tx_hash())
    }

    /// Sends `cancelAuthorization` from the relayer; returns the tx hash.
    pub async fn send_cancel(
        &self,
        authorizer: Address,
        nonce: B256,
        signature: &Signature,
    ) -> Result<B256, ChainError> {
        let (from, provider) = self.sender()?;
        let usdc = IUsdc::new(self.network.usdc, provider);
        let call = usdc
            .cancelAuthorization(
                authorizer,
                nonce,
                27 + u8::from(signature.v()),
                signature.r().into(),
                signature.s().into(),
            )
            .from(*from);
        let _one_at_a_time = self.send_lock.lock().await;
        let pending = bounded(self.timeouts.rpc, call.send(), from_contract).await?;
        Ok(*pending.tx_hash())
    }

    /// A transaction's receipt, if it is mined.
    pub async fn receipt(&self, tx_hash: B256) -> Result<Option<TransactionReceipt>, ChainError> {
        bounded(
            self.timeouts.rpc,
            self.reader.get_transaction_receipt(tx_hash).into_future(),
            from_rpc,
        )
        .await
    }

    /// Waits up to `limit` for a receipt; `None` when it did not come in time.
    pub async fn wait_receipt(
        &self,
        tx_hash: B256,
        limit: Duration,
    ) -> Result<Option<TransactionReceipt>, ChainError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut pause = Duration::from_millis(20);
        loop {
            if let Some(receipt) = self.receipt(tx_hash).await? {
                return Ok(Some(receipt));
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// The USDC transfers in a receipt.
    pub fn transfers_in(&self, receipt: &TransactionReceipt) -> Vec<TransferLog> {
        receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == self.network.usdc)
            .filter_map(|log| {
                let event = IUsdc::Transfer::decode_log(&log.inner).ok()?;
                Some(TransferLog {
                    tx_hash: receipt.transaction_hash,
                    log_index: log.log_index.unwrap_or_default(),
                    block: log.block_number.unwrap_or_default(),
                    from: event.from,
                    to: event.to,
                    value: event.value,
                })
            })
            .collect()
    }

    /// USDC transfers to any of `to` in blocks `from_block..=to_block`.
    /// The transaction that used `authorizer`'s `nonce` (its `AuthorizationUsed`
    /// log), searched in the last `lookback` blocks.
    pub async fn authorization_used_tx(
        &self,
        authorizer: Address,
        nonce: B256,
        lookback: u64,
    ) -> Result<Option<B256>, ChainError> {
        let latest = self.block_number().await?;
        let filter = Filter::new()
            .address(self.network.usdc)
            .event_signature(IUsdc::AuthorizationUsed::SIGNATURE_HASH)
            .topic1(authorizer.into_word())
            .topic2(nonce)
            .from_block(latest.saturating_sub(lookback))
            .to_block(latest);
        let logs = bounded(self.timeouts.rpc, self.reader.get_logs(&filter), from_rpc).await?;
        Ok(logs.iter().find_map(|log| log.transaction_hash))
    }

    pub async fn transfers_to(
        &self,
        to: &[Address],
        from_block: u64,
        to_block: u64,
    ) -> Result<Vec<TransferLog>, ChainError> {
        if to.is_empty() {
            return Ok(Vec::new());
        }
        let topics: Vec<B256> = to.iter().map(|a| a.into_word()).collect();
        let filter = Filter::new()
            .address(self.network.usdc)
            .event_signature(IUsdc::Transfer::SIGNATURE_HASH)
            .topic2(topics)
            .from_block(from_block)
            .to_block(to_block);
        let logs = bounded(self.timeouts.rpc, self.reader.get_logs(&filter), from_rpc).await?;
        Ok(logs
            .iter()
            .filter_map(|log| {
                let event = IUsdc::Transfer::decode_log(&log.inner).ok()?;
                Some(TransferLog {
                    tx_hash: log.transaction_hash?,
                    log_index: log.log_index?,
                    block: log.block_number?,
                    from: event.from,
                    to: event.to,
                    value: event.value,
                })
            })
            .collect())
    }
}
