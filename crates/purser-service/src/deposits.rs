//! The wallet on chain: USDC that arrives at a wallet's address is recorded in the
//! ledger (from `system/chain_deposits`), exactly once per log, and the ledger can
//! be compared with the chain.

use std::collections::HashMap;

use alloy_primitives::Address;
use purser_core::change::{Change, NewTransfer};
use purser_store::WriteRequest;
use purser_types::{AccountId, AccountKind, Actor, Currency, TransferId, Usdc, WalletId};

use crate::idempotency::{IdempotencyKey, idempotency};
use crate::ids::new_id_bytes;
use crate::{Purser, ServiceError, chain_unavailable};

/// The largest block range one scan asks the node for.
pub(crate) const MAX_SCAN_BLOCKS: u64 = 5_000;

/// A wallet's balance on the ledger beside its balance on chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciliation {
    /// The wallet.
    pub wallet_id: WalletId,
    /// Its address.
    pub address: String,
    /// Available + reserved on the ledger.
    pub ledger_amount: Usdc,
    /// Reserved on the ledger (payments in flight).
    pub reserved_amount: Usdc,
    /// USDC at the address on chain.
    pub chain_amount: Usdc,
    /// Chain minus ledger, signed ("0", "+1.5", "-0.25").
    pub difference: String,
    /// Whether they agree.
    pub matches: bool,
}

/// `chain - ledger` as a signed decimal.
fn signed_difference(chain: Usdc, ledger: Usdc) -> String {
    match (chain.checked_sub(ledger), ledger.checked_sub(chain)) {
        (Some(more), _) if !more.is_zero() => format!("+{more}"),
        (_, Some(less)) if !less.is_zero() => format!("-{less}"),
        _ => "0".to_owned(),
    }
}

impl Purser {
    fn cursor_key(&self) -> Result<String, ServiceError> {
        let chain = self.chain()?;
        Ok(format!("chain_cursor/{}", chain.network().caip2()))
    }

    /// Scans new blocks for USDC transfers to wallets and records each as a deposit.
    /// Returns how many were recorded.
    pub async fn scan_deposits(&self) -> Result<usize, ServiceError> {
        Ok(self.scan_deposits_once().await?.0)
    }

    /// Scans until the cursor reaches the chain's latest block; returns how many
    /// deposits were recorded.
    pub async fn catch_up_deposits(&self) -> Result<usize, ServiceError> {
        let mut recorded = 0;
        loop {
            let (found, caught_up) = self.scan_deposits_once().await?;
            recorded += found;
            if caught_up {
                return Ok(recorded);
            }
        }
    }

    /// One scan of at most [`MAX_SCAN_BLOCKS`]: (deposits recorded, caught up).
    async fn scan_deposits_once(&self) -> Result<(usize, bool), ServiceError> {
        let chain = self.chain()?;
        let key = self.cursor_key()?;
        let latest = chain.block_number().await.map_err(chain_unavailable)?;
        let next = match self.inner.store.meta(&key).await? {
            Some(cursor) => cursor.parse::<u64>().unwrap_or_default().saturating_add(1),
            // On a public network, start where the chain is at first start.
            None if self.inner.config.chain_start_block == u64::MAX => latest,
            None => self.inner.config.chain_start_block,
        };
        if next > latest {
            return Ok((0, true));
        }
        let to_block = latest.min(next.saturating_add(MAX_SCAN_BLOCKS - 1));
        let wallets: HashMap<Address, WalletId> = self
            .inner
            .store
            .wallet_addresses()
            .await?
            .into_iter()
            .filter_map(|(id, address)| Some((address.parse().ok()?, id)))
            .collect();
        let addresses: Vec<Address> = wallets.keys().copied().collect();
        let logs = chain
            .transfers_to(&addresses, next, to_block)
            .await
            .map_err(chain_unavailable)?;
        let mut recorded = 0;
        for log in logs {
            let (Some(wallet), Ok(amount)) = (
                wallets.get(&log.to),
                u64::try_from(log.value)
                    .map_err(|_| ())
                    .and_then(|v| Usdc::from_atomic(v).map_err(|_| ())),
            ) else {
                continue;
            };
            if amount.is_zero() {
                continue;
            }
            if self
                .record_deposit(
                    *wallet,
                    amount,
                    &format!("{:#x}:{}", log.tx_hash, log.log_index),
                )
                .await?
            {
                recorded += 1;
            }
        }
        self.inner
            .store
            .meta_set(&key, &to_block.to_string())
            .await?;
        Ok((recorded, to_block >= latest))
    }

    /// Records one deposit; idempotent by its chain reference. `true` when new.
    async fn record_deposit(
        &self,
        wallet: WalletId,
        amount: Usdc,
        reference: &str,
    ) -> Result<bool, ServiceError> {
        let change = Change::Transfer(NewTransfer {
            id: TransferId::from_bytes(new_id_bytes(&*self.inner.clock)?),
            from: AccountId::system(AccountKind::ChainDeposits, Currency::Usdc),
            to: AccountId::available(wallet, Currency::Usdc),
            amount,
            kind: purser_types::TransferKind::Deposit,
            memo: Some(format!("deposit {reference}")),
        });
        let key = IdempotencyKey::parse(&format!("deposit:{reference}"))?;
        let write = WriteRequest {
            at: self.inner.clock.now(),
            actor: Actor::System,
            idempotency: Some(idempotency(None, &key, change.name(), &(wallet, amount))?),
            change,
        };
        let committed = self.inner.store.write(write).await?;
        if !committed.replayed {
            tracing::info!(%wallet, %amount, reference, "chain deposit recorded");
        }
        Ok(!committed.replayed)
    }

    /// Compares each wallet's ledger balance (available + reserved) with its USDC on
    /// chain, after recording every deposit up to the latest block. A payment that
    /// left on chain but is not finished yet (its funds still reserved) shows as a
    /// difference until the background task finishes it.
    pub async fn reconcile(&self) -> Result<Vec<Reconciliation>, ServiceError> {
        let chain = self.chain()?;
        self.catch_up_deposits().await?;
        let mut report = Vec::new();
        for (wallet, address) in self.inner.store.wallet_addresses().await? {
            let parsed: Address = address
                .parse()
                .map_err(|_| crate::wallets::corrupt("wallet address"))?;
            let on_chain = chain.balance_of(parsed).await.map_err(chain_unavailable)?;
            let chain_amount = u64::try_from(on_chain)
                .ok()
                .and_then(|v| Usdc::from_atomic(v).ok())
                .unwrap_or(Usdc::MAX);
            let balances = self
                .inner
                .store
                .balances(wallet, Currency::Usdc)
                .await?
                .ok_or(ServiceError::NotFound)?;
            let ledger_amount = balances.total;
            report.push(Reconciliation {
                wallet_id: wallet,
                address,
                ledger_amount,
                reserved_amount: balances.reserved,
                chain_amount,
                difference: signed_difference(chain_amount, ledger_amount),
                matches: ledger_amount == chain_amount,
            });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_is_signed_chain_minus_ledger() {
        let usdc = |s: &str| s.parse::<Usdc>().unwrap();
        assert_eq!(signed_difference(usdc("2"), usdc("2")), "0");
        assert_eq!(signed_difference(usdc("3.5"), usdc("2")), "+1.5");
        assert_eq!(signed_difference(usdc("1.75"), usdc("2")), "-0.25");
    }
}
