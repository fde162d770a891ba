//! Wallets, agents and plain ledger transfers.

use purser_types::{
    AccountId, Agent, AgentStatus, Transfer, TransferId, TransferKind, Usdc, WalletId,
};
use serde_json::json;

use super::{Batch, Needs, NewWallet, Refusal, Step, Undo, WriteRequest, derived_id};
use crate::change::{Change, NewTransfer, Outcome, event, transfer_action};

pub(super) fn needs(needs: &mut Needs, request: &WriteRequest) {
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
        _ => {}
    }
}

impl Batch {
    pub(super) fn apply_account_change(
        &mut self,
        step: Step,
        change: &Change,
    ) -> Result<Outcome, Refusal> {
        match change {
            Change::CreateWallet {
                wallet,
                owner_token_hash,
                sealed_key,
                password_hash,
            } => {
                if !self.wallets.insert(wallet.id) {
                    return Err(Refusal::AlreadyExists);
                }
                self.undo.push(Undo::Wallet(wallet.id));
                for account in [
                    AccountId::available(wallet.id, wallet.currency),
                    AccountId::reserved(wallet.id, wallet.currency),
                ] {
                    self.undo
                        .push(Undo::Balance(account, self.ledger.balance(account)));
                    self.ledger.open(account);
                    self.opened.push(account);
                }
                self.effects.wallets.push(NewWallet {
                    wallet: wallet.clone(),
                    owner_token_hash: *owner_token_hash,
                    sealed_key: sealed_key.clone(),
                    password_hash: password_hash.clone(),
                });
                let details = json!({"name": wallet.name, "currency": wallet.currency, "address": wallet.address});
                self.record(
                    step,
                    event(
                        step.actor,
                        "wallet.created",
                        Some(wallet.id),
                        wallet.id,
                        details,
                    ),
                );
                Ok(Outcome::Wallet(wallet.clone()))
            }
            Change::RegisterAgent {
                agent,
                credential_hash,
            } => self.register_agent(step, agent, *credential_hash),
            Change::RevokeAgent { wallet, agent } => self.revoke_agent(step, *wallet, *agent),
            Change::Transfer(transfer) => self.post(step, transfer).map(Outcome::Transfer),
            _ => Err(Refusal::InvalidState("not an account change")),
        }
    }

    fn register_agent(
        &mut self,
        step: Step,
        agent: &Agent,
        credential_hash: purser_types::Hash32,
    ) -> Result<Outcome, Refusal> {
        if !self.wallets.contains(&agent.wallet_id) {
            return Err(Refusal::NotFound);
        }
        if self.agents.contains_key(&agent.id) {
            return Err(Refusal::AlreadyExists);
        }
        let agent = Agent {
            status: AgentStatus::Active,
            revoked_at: None,
            ..agent.clone()
        };
        self.undo.push(Undo::Agent(agent.id, None));
        self.agents.insert(agent.id, agent.clone());
        self.effects.agents.push((agent.clone(), credential_hash));
        let details = json!({"name": agent.name});
        self.record(
            step,
            event(
                step.actor,
                "agent.registered",
                Some(agent.wallet_id),
                agent.id,
                details,
            ),
        );
        Ok(Outcome::Agent(agent))
    }

    fn revoke_agent(
        &mut self,
        step: Step,
        wallet: WalletId,
        agent: purser_types::AgentId,
    ) -> Result<Outcome, Refusal> {
        let record = self
            .agents
            .get(&agent)
            .filter(|a| a.wallet_id == wallet)
            .ok_or(Refusal::NotFound)?
            .clone();
        if record.status == AgentStatus::Active {
            let revoked = Agent {
                status: AgentStatus::Revoked,
                revoked_at: Some(step.at),
                ..record.clone()
            };
            self.undo.push(Undo::Agent(agent, Some(record)));
            self.agents.insert(agent, revoked.clone());
            self.effects.revocations.push((agent, step.at));
            self.record(
                step,
                event(step.actor, "agent.revoked", Some(wallet), agent, json!({})),
            );
            return Ok(Outcome::Agent(revoked));
        }
        Ok(Outcome::Agent(record))
    }

    /// Posts a transfer under the ledger's rules and records it.
    pub(super) fn post(&mut self, step: Step, transfer: &NewTransfer) -> Result<Transfer, Refusal> {
        self.ledger
            .check(transfer.from, transfer.to, transfer.amount)?;
        for account in [transfer.from, transfer.to] {
            self.undo
                .push(Undo::Balance(account, self.ledger.balance(account)));
        }
        self.ledger
            .transfer(transfer.from, transfer.to, transfer.amount)?;
        let posted = Transfer {
            id: transfer.id,
            from: transfer.from,
            to: transfer.to,
            amount: transfer.amount,
            currency: transfer.currency(),
            kind: transfer.kind,
            memo: transfer.memo.clone(),
            created_at: step.at,
        };
        let details = json!({
            "from": posted.from, "to": posted.to, "amount": posted.amount,
            "currency": posted.currency, "kind": posted.kind, "memo": posted.memo,
        });
        let wallet = posted.to.wallet.or(posted.from.wallet);
        self.record(
            step,
            event(
                step.actor,
                transfer_action(posted.kind),
                wallet,
                posted.id,
                details,
            ),
        );
        self.effects.transfers.push(posted.clone());
        Ok(posted)
    }

    /// Posts a transfer the caller has already checked will pass (a hold, a payment
    /// out of a hold, a release), with an id derived from the record it serves.
    pub(super) fn post_checked(
        &mut self,
        step: Step,
        seed: &[u8; 16],
        (from, to): (AccountId, AccountId),
        amount: Usdc,
        kind: TransferKind,
    ) -> Result<Transfer, Refusal> {
        let id = TransferId::from_bytes(derived_id(seed, kind.as_str()));
        self.post(
            step,
            &NewTransfer {
                id,
                from,
                to,
                amount,
                kind,
                memo: None,
            },
        )
    }

    /// Whether a transfer would pass, without making it.
    pub(super) fn can_post(&self, from: AccountId, to: AccountId, amount: Usdc) -> bool {
        self.ledger.check(from, to, amount).is_ok()
    }
}
