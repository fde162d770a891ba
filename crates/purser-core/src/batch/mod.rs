//! Applying a batch of changes, purely.
//!
//! The store commits changes in batches (group commit). For each batch it loads —
//! and on PostgreSQL locks — the current state of every row the batch reads
//! ([`needs`], then [`dependent_needs`] for rows named by rows it loaded), builds a
//! [`Snapshot`], and hands it to a [`Batch`]. The batch applies each
//! [`WriteRequest`] in order against that state, with the rules of
//! [`crate::ledger`], [`crate::mandate`] and [`crate::authorize`], recording an audit
//! event for every step, and [`Batch::finish`] returns the [`Effects`] to persist:
//! rows to insert and guarded updates. All decisions are made here, in memory,
//! deterministically; the database only holds their results.
//!
//! A change either applies whole or is refused: handlers check everything before
//! they mutate anything, so a [`Refusal`] leaves no trace and its neighbours in the
//! batch are unaffected.

mod accounts;
mod payments;
mod table;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use purser_types::{
    AccountId, Actor, Agent, AgentId, Approval, ApprovalId, AuditEvent, Denial, Hash32, Mandate,
    MandateId, Payout, PayoutId, Reservation, ReservationId, Transfer, UnixMs, Usdc, WalletId,
    WalletPolicy,
};
use sha2::{Digest, Sha256};

use table::Table;
pub use table::{Versioned, Write};

use crate::authorize::{MonthTotals, month_of};
use crate::change::{Change, Outcome};
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
    /// When the change happens (from the service's clock); decisions use this time.
    pub at: UnixMs,
    /// Who made it; named in the audit records.
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
    /// The object is not in a state that allows the change.
    #[error("{0}")]
    InvalidState(&'static str),
    /// The change is refused for a payment reason (e.g. the agent was revoked).
    #[error("{}", .0.code())]
    Denied(Denial),
}

/// The rows a batch reads, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Ledger accounts.
    pub accounts: BTreeSet<AccountId>,
    /// Wallets.
    pub wallets: BTreeSet<WalletId>,
    /// Agents.
    pub agents: BTreeSet<AgentId>,
    /// Idempotency keys, as (scope, key).
    pub keys: BTreeSet<(String, String)>,
    /// Mandates by id.
    pub mandates: BTreeSet<MandateId>,
    /// Every signed mandate still in force of these agents (payment candidates).
    pub agent_mandates: BTreeSet<AgentId>,
    /// Reservations.
    pub reservations: BTreeSet<ReservationId>,
    /// Approvals.
    pub approvals: BTreeSet<ApprovalId>,
    /// Wallet policies.
    pub policies: BTreeSet<WalletId>,
    /// Agents' monthly totals, as (agent, `YYYY-MM`).
    pub months: BTreeSet<(AgentId, String)>,
    /// Payouts, as (wallet, payout id).
    pub payouts: BTreeSet<(WalletId, PayoutId)>,
    /// The earliest request time: mandates that ended before it are not candidates.
    pub now: Option<UnixMs>,
}

impl Needs {
    /// Whether nothing is needed.
    pub fn is_empty(&self) -> bool {
        Needs {
            now: None,
            ..self.clone()
        } == Needs::default()
    }
}

/// Which rows the store must load (and lock) before applying `requests`.
pub fn needs<'a>(requests: impl IntoIterator<Item = &'a WriteRequest>) -> Needs {
    let mut needs = Needs::default();
    for request in requests {
        needs.now = Some(needs.now.map_or(request.at, |now| now.min(request.at)));
        if let Some(idempotency) = &request.idempotency {
            needs.keys.insert(idempotency.slot());
        }
        accounts::needs(&mut needs, request);
        payments::needs(&mut needs, request);
    }
    needs
}

/// Rows named by rows already loaded: a reservation's mandate, agent and month.
/// The store loads these in a second round.
pub fn dependent_needs(snapshot: &Snapshot) -> Needs {
    let mut needs = Needs::default();
    for reservation in snapshot.reservations.values().map(|r| &r.value) {
        if let Some(mandate) = reservation
            .mandate_id
            .filter(|m| !snapshot.mandates.contains_key(m))
        {
            needs.mandates.insert(mandate);
        }
        if !snapshot.agents.contains_key(&reservation.agent_id) {
            needs.agents.insert(reservation.agent_id);
        }
        let month = (reservation.agent_id, month_of(reservation.created_at));
        if !snapshot.months.contains_key(&month) {
            needs.months.insert(month);
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
    /// Mandates.
    pub mandates: BTreeMap<MandateId, Versioned<Mandate>>,
    /// Reservations.
    pub reservations: BTreeMap<ReservationId, Versioned<Reservation>>,
    /// Approvals.
    pub approvals: BTreeMap<ApprovalId, Versioned<Approval>>,
    /// Wallet policies.
    pub policies: BTreeMap<WalletId, Versioned<WalletPolicy>>,
    /// Agents' monthly totals.
    pub months: BTreeMap<(AgentId, String), Versioned<MonthTotals>>,
    /// Payouts.
    pub payouts: BTreeMap<(WalletId, PayoutId), Versioned<Payout>>,
}

/// A new wallet row: the wallet and the secrets' stored forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWallet {
    /// The wallet.
    pub wallet: purser_types::Wallet,
    /// SHA-256 of the owner token.
    pub owner_token_hash: Hash32,
    /// The sealed wallet key.
    pub sealed_key: String,
    /// The PHC string of the dashboard password, if any.
    pub password_hash: Option<String>,
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
    /// Mandates to insert or update.
    pub mandates: Vec<Write<MandateId, Mandate>>,
    /// Reservations to insert or update.
    pub reservations: Vec<Write<ReservationId, Reservation>>,
    /// Approvals to insert or update.
    pub approvals: Vec<Write<ApprovalId, Approval>>,
    /// Policies to insert or update.
    pub policies: Vec<Write<WalletId, WalletPolicy>>,
    /// Monthly totals to insert or update.
    pub months: Vec<Write<(AgentId, String), MonthTotals>>,
    /// Payouts to insert or update.
    pub payouts: Vec<Write<(WalletId, PayoutId), Payout>>,
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

/// How to undo one in-memory mutation that is not in a [`Table`] journal.
#[derive(Debug)]
enum Undo {
    Balance(AccountId, Option<i64>),
    Wallet(WalletId),
    Agent(AgentId, Option<Agent>),
}

/// Where everything stood before a change, to roll a refused change back.
#[derive(Debug, Clone, Copy)]
struct Savepoint {
    undo: usize,
    opened: usize,
    tables: [usize; 6],
    effects: [usize; 5],
}

/// A batch being applied.
#[derive(Debug)]
pub struct Batch {
    undo: Vec<Undo>,
    ledger: MemoryLedger,
    loaded_balances: BTreeMap<AccountId, i64>,
    opened: Vec<AccountId>,
    wallets: BTreeSet<WalletId>,
    agents: BTreeMap<AgentId, Agent>,
    keys: BTreeMap<(String, String), StoredKey>,
    mandates: Table<MandateId, Mandate>,
    reservations: Table<ReservationId, Reservation>,
    approvals: Table<ApprovalId, Approval>,
    policies: Table<WalletId, WalletPolicy>,
    months: Table<(AgentId, String), MonthTotals>,
    payouts: Table<(WalletId, PayoutId), Payout>,
    effects: Effects,
}

/// The request being applied: its time and actor, for records and audit events.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    pub(crate) at: UnixMs,
    pub(crate) actor: Actor,
}

impl Batch {
    /// Starts a batch on the loaded state.
    pub fn new(snapshot: Snapshot) -> Batch {
        let loaded_balances = snapshot.ledger.balances().collect();
        Batch {
            undo: Vec::new(),
            ledger: snapshot.ledger,
            loaded_balances,
            opened: Vec::new(),
            wallets: snapshot.wallets,
            agents: snapshot.agents,
            keys: snapshot.keys,
            mandates: Table::loaded(snapshot.mandates),
            reservations: Table::loaded(snapshot.reservations),
            approvals: Table::loaded(snapshot.approvals),
            policies: Table::loaded(snapshot.policies),
            months: Table::loaded(snapshot.months),
            payouts: Table::loaded(snapshot.payouts),
            effects: Effects::default(),
        }
    }

    /// Applies one request: a replay of its idempotency key, the change, or a refusal
    /// that leaves the batch as it was.
    pub fn apply(&mut self, request: &WriteRequest) -> Result<Committed, Refusal> {
        if let Some(idempotency) = &request.idempotency
            && let Some(stored) = self.keys.get(&idempotency.slot())
        {
            if stored.fingerprint != idempotency.fingerprint {
                return Err(Refusal::IdempotencyConflict);
            }
            return Ok(Committed {
                outcome: stored.outcome.clone(),
                replayed: true,
            });
        }
        let step = Step {
            at: request.at,
            actor: request.actor,
        };
        let savepoint = self.savepoint();
        let applied = match &request.change {
            change @ (Change::CreateWallet { .. }
            | Change::RegisterAgent { .. }
            | Change::RevokeAgent { .. }
            | Change::Transfer(_)) => self.apply_account_change(step, change),
            change => self.apply_payment_change(step, change),
        };
        let outcome = match applied {
            Ok(outcome) => {
                self.settle();
                outcome
            }
            Err(refusal) => {
                self.rollback(savepoint);
                return Err(refusal);
            }
        };
        if let Some(idempotency) = &request.idempotency
            && outcome.consumes_key()
        {
            let stored = StoredKey {
                fingerprint: idempotency.fingerprint,
                outcome: outcome.clone(),
            };
            self.keys.insert(idempotency.slot(), stored);
            let recorded = RecordedKey {
                key: idempotency.clone(),
                outcome: outcome.clone(),
                at: request.at,
            };
            self.effects.keys.push(recorded);
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
        self.effects.mandates = self.mandates.writes();
        self.effects.reservations = self.reservations.writes();
        self.effects.approvals = self.approvals.writes();
        self.effects.policies = self.policies.writes();
        self.effects.months = self.months.writes();
        self.effects.payouts = self.payouts.writes();
        self.effects
    }

    fn savepoint(&self) -> Savepoint {
        Savepoint {
            undo: self.undo.len(),
            opened: self.opened.len(),
            tables: [
                self.mandates.mark(),
                self.reservations.mark(),
                self.approvals.mark(),
                self.policies.mark(),
                self.months.mark(),
                self.payouts.mark(),
            ],
            effects: [
                self.effects.wallets.len(),
                self.effects.transfers.len(),
                self.effects.agents.len(),
                self.effects.revocations.len(),
                self.effects.audit.len(),
            ],
        }
    }

    /// Undoes everything since `savepoint`: a refused change leaves no trace.
    fn rollback(&mut self, savepoint: Savepoint) {
        while self.undo.len() > savepoint.undo {
            match self.undo.pop() {
                Some(Undo::Balance(account, balance)) => self.ledger.restore(account, balance),
                Some(Undo::Wallet(wallet)) => {
                    self.wallets.remove(&wallet);
                }
                Some(Undo::Agent(agent, previous)) => match previous {
                    Some(previous) => {
                        self.agents.insert(agent, previous);
                    }
                    None => {
                        self.agents.remove(&agent);
                    }
                },
                None => break,
            }
        }
        self.opened.truncate(savepoint.opened);
        let [m, r, a, p, mo, po] = savepoint.tables;
        self.mandates.rollback(m);
        self.reservations.rollback(r);
        self.approvals.rollback(a);
        self.policies.rollback(p);
        self.months.rollback(mo);
        self.payouts.rollback(po);
        let [w, t, ag, rv, au] = savepoint.effects;
        self.effects.wallets.truncate(w);
        self.effects.transfers.truncate(t);
        self.effects.agents.truncate(ag);
        self.effects.revocations.truncate(rv);
        self.effects.audit.truncate(au);
    }

    /// Makes the journals forget: the change applied is final.
    fn settle(&mut self) {
        self.undo.clear();
        self.mandates.settle();
        self.reservations.settle();
        self.approvals.settle();
        self.policies.settle();
        self.months.settle();
        self.payouts.settle();
    }

    fn record(&mut self, step: Step, event: AuditEvent) {
        self.effects.audit.push((step.at, event));
    }

    /// A wallet's available balance as an amount (zero if unknown or negative).
    fn available(&self, wallet: WalletId) -> Usdc {
        let account = AccountId::available(wallet, purser_types::Currency::Usdc);
        self.ledger
            .balance(account)
            .and_then(|b| Usdc::from_atomic_i64(b).ok())
            .unwrap_or(Usdc::ZERO)
    }
}

/// A time-ordered id derived from another id and a step name, so records a change
/// creates get stable ids without randomness inside the batch.
pub(crate) fn derived_id(seed: &[u8; 16], step: &str) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(seed)
        .chain_update(step.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&seed[..6]);
    bytes[6..].copy_from_slice(&digest[..10]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}
