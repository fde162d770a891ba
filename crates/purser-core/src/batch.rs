//! Applying a batch of changes, purely.
//!
//! The store commits changes in batches (group commit). For each batch it loads —
//! and on PostgreSQL locks — the current state of every row the batch reads
//! ([`needs`] says which), builds a [`Snapshot`], and hands it to a [`Batch`]. The
//! batch applies each [`WriteRequest`] in order against that state, with the rules
//! of [`crate::ledger`], and records what changed as [`Effects`]. The store then
//! persists the effects with a fixed number of set-based statements, whatever the
//! batch's size. All decisions are made here, in memory, deterministically; the
//! database only holds their result. A refused change leaves no trace in the state
//! or the effects, so its neighbours in the batch are unaffected.

use std::collections::{BTreeMap, BTreeSet};

use purser_types::{
    AccountId, Actor, Agent, AgentId, AgentStatus, AuditEvent, Hash32, Transfer, UnixMs, Wallet,
    WalletId,
};

use crate::change::{Change, NewTransfer, Outcome};
use crate::ledger::{LedgerError, MemoryLedger};

/// A caller's idempotency key, scoped to who sent it, with a fingerprint of the
/// request it was first used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// Whose keys these are (an owner's wallet, an agent, or anonymous sign-up).
    pub scope: String,
    /// The caller's key.
    pub key: String,
    /// SHA-256 over the operation and its parameters.
    pub fingerprint: Hash32,
}

impl Idempotency {
    fn slot(&self) -> (String, String) {
        (self.scope.clone(), self.key.clone())
    }
}

/// One change to apply, with who asked for it and when.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// When the change happens (from the service's clock).
    pub at: UnixMs,
    /// Who made it; named in the audit record.
    pub actor: Actor,
    /// The caller's idempotency key, if the change is idempotent.
    pub idempotency: Option<Idempotency>,
    /// The change.
    pub change: Change,
}

/// A change as committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The record the change produced (or produced the first time, on a replay).
    pub outcome: Outcome,
    /// True when an earlier request with the same idempotency key did the work.
    pub replayed: bool,
}

/// Why one change in a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The ledger's rules refused the transfer.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The object the change refers to does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// The idempotency key was used before with different parameters.
    #[error("idempotency key reused with different parameters")]
    IdempotencyConflict,
    /// An object with this id already exists.
    #[error("already exists")]
    AlreadyExists,
}

/// The rows a batch reads, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Ledger accounts moved by transfers.
    pub accounts: BTreeSet<AccountId>,
    /// Wallets created or given agents.
    pub wallets: BTreeSet<WalletId>,
    /// Agents registered or revoked.
    pub agents: BTreeSet<AgentId>,
    /// Idempotency keys, as (scope, key).
    pub keys: BTreeSet<(String, String)>,
}

/// Which rows the store must load (and lock) before applying `requests`.
pub fn needs<'a>(requests: impl IntoIterator<Item = &'a WriteRequest>) -> Needs {
    let mut needs = Needs::default();
    for request in requests {
        if let Some(idempotency) = &request.idempotency {
            needs.keys.insert(idempotency.slot());
        }
        match &request.change {
            Change::CreateWallet { wallet, .. } => {
                needs.wallets.insert(wallet.id);
            }
            Change::RegisterAgent { agent, .. } => {
                needs.wallets.insert(agent.wallet_id);
                needs.agents.insert(agent.id);
            }
            Change::RevokeAgent { agent, .. } => {
                needs.agents.insert(*agent);
            }
            Change::Transfer(transfer) => {
                needs.accounts.insert(transfer.from);
                needs.accounts.insert(transfer.to);
            }
        }
    }
    needs
}

/// The stored use of an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The fingerprint of the request that first used the key.
    pub fingerprint: Hash32,
    /// What that request produced.
    pub outcome: Outcome,
}

/// The current state of the rows a batch reads, as loaded by the store. Rows that
/// do not exist are simply absent.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Existing accounts and their balances.
    pub ledger: MemoryLedger,
    /// Existing wallets.
    pub wallets: BTreeSet<WalletId>,
    /// Existing agents.
    pub agents: BTreeMap<AgentId, Agent>,
    /// Idempotency keys already used.
    pub keys: BTreeMap<(String, String), StoredKey>,
}

/// A new wallet row: the wallet and the secrets' stored forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWallet {
    /// The wallet.
    pub wallet: Wallet,
    /// SHA-256 of the owner token.
    pub owner_token_hash: Hash32,
    /// The sealed wallet key.
    pub sealed_key: String,
}

/// A balance that changed, with its value when loaded (so the store can check
/// nothing else changed it meanwhile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceUpdate {
    /// The account.
    pub account: AccountId,
    /// Its balance when the batch loaded it (0 for accounts opened by the batch).
    pub before: i64,
    /// Its balance after the batch.
    pub after: i64,
}

/// A first use of an idempotency key, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedKey {
    /// The key and its request's fingerprint.
    pub key: Idempotency,
    /// What the request produced.
    pub outcome: Outcome,
    /// When.
    pub at: UnixMs,
}

/// Everything a batch changed, for the store to persist in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Wallets to insert.
    pub wallets: Vec<NewWallet>,
    /// Accounts to insert with a zero balance (before `balances` apply).
    pub accounts: Vec<AccountId>,
    /// Balances to set.
    pub balances: Vec<BalanceUpdate>,
    /// Transfers to insert.
    pub transfers: Vec<Transfer>,
    /// Agents to insert, with their credential hashes.
    pub agents: Vec<(Agent, Hash32)>,
    /// Agents to mark revoked, and when.
    pub revocations: Vec<(AgentId, UnixMs)>,
    /// Idempotency keys to record with their outcomes.
    pub keys: Vec<RecordedKey>,
    /// Audit events to chain, in order.
    pub audit: Vec<(UnixMs, AuditEvent)>,
}

impl Effects {
    /// True when the batch changed nothing (only refusals and replays).
    pub fn is_empty(&self) -> bool {
        *self == Effects::default()
    }
}

/// A batch being applied.
#[derive(Debug)]
pub struct Batch {
    state: Snapshot,
    loaded_balances: BTreeMap<AccountId, i64>,
    opened: Vec<AccountId>,
    effects: Effects,
}

impl Batch {
    /// Starts a batch on the loaded state.
    pub fn new(snapshot: Snapshot) -> Batch {
        let loaded_balances = snapshot.ledger.balances().collect();
        Batch {
            state: snapshot,
            loaded_balances,
            opened: Vec::new(),
            effects: Effects::default(),
        }
    }

    /// Applies one request: a replay of its idempotency key, the change, or a refusal
    /// that leaves the batch as it was.
    pub fn apply(&mut self, request: &WriteRequest) -> Result<Committed, Refusal> {
        if let Some(idempotency) = &request.idempotency
            && let Some(stored) = self.state.keys.get(&idempotency.slot())
        {
            if stored.fingerprint != idempotency.fingerprint {
                return Err(Refusal::IdempotencyConflict);
            }
            return Ok(Committed {
                outcome: stored.outcome.clone(),
                replayed: true,
            });
        }
        let (outcome, changed) = self.apply_change(request)?;
        if changed {
            self.effects
                .audit
                .push((request.at, request.change.audit_event(request.actor)));
        }
        if let Some(idempotency) = &request.idempotency {
            let stored = StoredKey {
                fingerprint: idempotency.fingerprint,
                outcome: outcome.clone(),
            };
            self.state.keys.insert(idempotency.slot(), stored);
            self.effects.keys.push(RecordedKey {
                key: idempotency.clone(),
                outcome: outcome.clone(),
                at: request.at,
            });
        }
        Ok(Committed {
            outcome,
            replayed: false,
        })
    }

    /// Ends the batch and returns what to persist.
    pub fn finish(mut self) -> Effects {
        self.effects.accounts = self.opened;
        self.effects.balances = self
            .state
            .ledger
            .balances()
            .filter_map(|(account, after)| {
                let before = self.loaded_balances.get(&account).copied().unwrap_or(0);
                (before != after).then_some(BalanceUpdate {
                    account,
                    before,
                    after,
                })
            })
            .collect();
        self.effects
    }

    fn apply_change(&mut self, request: &WriteRequest) -> Result<(Outcome, bool), Refusal> {
        match &request.change {
            Change::CreateWallet {
                wallet,
                owner_token_hash,
                sealed_key,
            } => {
                if !self.state.wallets.insert(wallet.id) {
                    return Err(Refusal::AlreadyExists);
                }
                for account in [
                    AccountId::available(wallet.id, wallet.currency),
                    AccountId::reserved(wallet.id, wallet.currency),
                ] {
                    self.state.ledger.open(account);
                    self.opened.push(account);
                }
                self.effects.wallets.push(NewWallet {
                    wallet: wallet.clone(),
                    owner_token_hash: *owner_token_hash,
                    sealed_key: sealed_key.clone(),
                });
                Ok((Outcome::Wallet(wallet.clone()), true))
            }
            Change::RegisterAgent {
                agent,
                credential_hash,
            } => {
                if !self.state.wallets.contains(&agent.wallet_id) {
                    return Err(Refusal::NotFound);
                }
                if self.state.agents.contains_key(&agent.id) {
                    return Err(Refusal::AlreadyExists);
                }
                let agent = Agent {
                    status: AgentStatus::Active,
                    revoked_at: None,
                    ..agent.clone()
                };
                self.state.agents.insert(agent.id, agent.clone());
                self.effects.agents.push((agent.clone(), *credential_hash));
                Ok((Outcome::Agent(agent), true))
            }
            Change::RevokeAgent { wallet, agent } => {
                let record = self
                    .state
                    .agents
                    .get_mut(agent)
                    .filter(|a| a.wallet_id == *wallet)
                    .ok_or(Refusal::NotFound)?;
                let changed = record.status == AgentStatus::Active;
                if changed {
                    record.status = AgentStatus::Revoked;
                    record.revoked_at = Some(request.at);
                    self.effects.revocations.push((*agent, request.at));
                }
                Ok((Outcome::Agent(record.clone()), changed))
            }
            Change::Transfer(transfer) => {
                let posted = self.post(transfer, request.at)?;
                Ok((Outcome::Transfer(posted), true))
            }
        }
    }

    fn post(&mut self, transfer: &NewTransfer, at: UnixMs) -> Result<Transfer, Refusal> {
        self.state
            .ledger
            .transfer(transfer.from, transfer.to, transfer.amount)?;
        let posted = Transfer {
            id: transfer.id,
            from: transfer.from,
            to: transfer.to,
            amount: transfer.amount,
            currency: transfer.currency(),
            kind: transfer.kind,
            memo: transfer.memo.clone(),
            created_at: at,
        };
        self.effects.transfers.push(posted.clone());
        Ok(posted)
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use purser_types::{AccountKind, Currency, TransferId, TransferKind, Usdc};

    fn wallet_id(n: u8) -> WalletId {
        WalletId::from_bytes([n; 16])
    }

    fn onramp() -> AccountId {
        AccountId::system(AccountKind::SandboxOnramp, Currency::Usdc)
    }

    fn request(change: Change, key: Option<(&str, u8)>) -> WriteRequest {
        WriteRequest {
            at: UnixMs(1_000),
            actor: Actor::System,
            idempotency: key.map(|(k, f)| Idempotency {
                scope: "s".into(),
                key: k.into(),
                fingerprint: Hash32([f; 32]),
            }),
            change,
        }
    }

    fn create(n: u8) -> Change {
        Change::CreateWallet {
            wallet: Wallet {
                id: wallet_id(n),
                name: "w".into(),
                currency: Currency::Usdc,
                address: format!("0x{n}"),
                created_at: UnixMs(0),
            },
            owner_token_hash: Hash32([n; 32]),
            sealed_key: "k".into(),
        }
    }

    fn pay(id: u8, from: AccountId, to: AccountId, atomic: u64) -> Change {
        Change::Transfer(NewTransfer {
            id: TransferId::from_bytes([id; 16]),
            from,
            to,
            amount: Usdc::from_atomic(atomic).unwrap(),
            kind: TransferKind::Adjustment,
            memo: None,
        })
    }

    fn snapshot_with_onramp() -> Snapshot {
        let mut snapshot = Snapshot::default();
        snapshot.ledger.insert(onramp(), -50);
        snapshot
    }

    #[test]
    fn a_wallet_created_in_the_batch_can_be_funded_in_the_same_batch() {
        let mut batch = Batch::new(snapshot_with_onramp());
        let to = AccountId::available(wallet_id(1), Currency::Usdc);
        assert_eq!(
            batch.apply(&request(pay(1, onramp(), to, 5), None)),
            Err(LedgerError::UnknownAccount(to).into())
        );
        batch.apply(&request(create(1), None)).unwrap();
        batch
            .apply(&request(pay(2, onramp(), to, 5), None))
            .unwrap();
        let effects = batch.finish();
        assert_eq!(effects.wallets.len(), 1);
        assert_eq!(effects.accounts.len(), 2);
        assert_eq!(
            effects.transfers.len(),
            1,
            "the refused transfer left nothing"
        );
        assert_eq!(effects.audit.len(), 2);
        let mut balances = effects.balances.clone();
        balances.sort_by_key(|b| b.account);
        assert_eq!(
            balances,
            vec![
                BalanceUpdate {
                    account: to,
                    before: 0,
                    after: 5
                },
                BalanceUpdate {
                    account: onramp(),
                    before: -50,
                    after: -55
                },
            ]
        );
    }

    #[test]
    fn keys_replay_within_and_across_batches_and_conflicts_are_refused() {
        let mut batch = Batch::new(Snapshot::default());
        let first = batch.apply(&request(create(1), Some(("k", 1)))).unwrap();
        let again = batch.apply(&request(create(1), Some(("k", 1)))).unwrap();
        assert!(again.replayed && !first.replayed);
        assert_eq!(again.outcome, first.outcome);
        assert_eq!(
            batch.apply(&request(create(2), Some(("k", 2)))),
            Err(Refusal::IdempotencyConflict)
        );
        let effects = batch.finish();
        assert_eq!(
            (
                effects.keys.len(),
                effects.wallets.len(),
                effects.audit.len()
            ),
            (1, 1, 1)
        );

        let mut snapshot = Snapshot::default();
        snapshot.keys.insert(
            ("s".into(), "k".into()),
            StoredKey {
                fingerprint: Hash32([1; 32]),
                outcome: first.outcome,
            },
        );
        let mut later = Batch::new(snapshot);
        assert!(
            later
                .apply(&request(create(1), Some(("k", 1))))
                .unwrap()
                .replayed
        );
        assert!(later.finish().is_empty());
    }

    #[test]
    fn agents_are_registered_on_existing_wallets_and_revoked_once() {
        let agent = Agent {
            id: AgentId::from_bytes([9; 16]),
            wallet_id: wallet_id(1),
            name: "a".into(),
            status: AgentStatus::Active,
            created_at: UnixMs(0),
            revoked_at: None,
        };
        let register = Change::RegisterAgent {
            agent: agent.clone(),
            credential_hash: Hash32([3; 32]),
        };
        let mut batch = Batch::new(Snapshot::default());
        assert_eq!(
            batch.apply(&request(register.clone(), None)),
            Err(Refusal::NotFound)
        );
        batch.apply(&request(create(1), None)).unwrap();
        batch.apply(&request(register.clone(), None)).unwrap();
        assert_eq!(
            batch.apply(&request(register, None)),
            Err(Refusal::AlreadyExists)
        );
        let foreign = Change::RevokeAgent {
            wallet: wallet_id(2),
            agent: agent.id,
        };
        assert_eq!(batch.apply(&request(foreign, None)), Err(Refusal::NotFound));
        let revoke = Change::RevokeAgent {
            wallet: wallet_id(1),
            agent: agent.id,
        };
        batch.apply(&request(revoke.clone(), None)).unwrap();
        batch.apply(&request(revoke, None)).unwrap();
        let effects = batch.finish();
        assert_eq!(effects.revocations, vec![(agent.id, UnixMs(1_000))]);
        let actions: Vec<_> = effects
            .audit
            .iter()
            .map(|(_, e)| e.action.as_str())
            .collect();
        assert_eq!(
            actions,
            ["wallet.created", "agent.registered", "agent.revoked"]
        );
    }

    proptest! {
        /// Any batch conserves money: the balance updates of a currency net to zero,
        /// and they equal the transfers the batch recorded.
        #[test]
        fn batches_conserve_money(steps in prop::collection::vec((0usize..4, 0usize..4, 0u64..40), 0..80)) {
            let mut snapshot = snapshot_with_onramp();
            let accounts: Vec<AccountId> = std::iter::once(onramp())
                .chain((1..=3).map(|n| AccountId::available(wallet_id(n), Currency::Usdc)))
                .collect();
            for account in &accounts[1..] {
                snapshot.ledger.insert(*account, 10);
            }
            snapshot.ledger.insert(onramp(), -30);
            let mut batch = Batch::new(snapshot);
            for (i, (from, to, amount)) in steps.into_iter().enumerate() {
                let id = u8::try_from(i % 250).unwrap();
                let _ = batch.apply(&request(pay(id, accounts[from], accounts[to], amount), None));
            }
            let effects = batch.finish();
            let net: i64 = effects.balances.iter().map(|b| b.after - b.before).sum();
            prop_assert_eq!(net, 0);
            for update in &effects.balances {
                let moved_in: i64 = effects.transfers.iter().filter(|t| t.to == update.account).map(|t| t.amount.atomic_i64()).sum();
                let moved_out: i64 = effects.transfers.iter().filter(|t| t.from == update.account).map(|t| t.amount.atomic_i64()).sum();
                prop_assert_eq!(update.after - update.before, moved_in - moved_out);
                if update.account != onramp() {
                    prop_assert!(update.after >= 0);
                }
            }
            prop_assert_eq!(effects.audit.len(), effects.transfers.len());
        }
    }
}
