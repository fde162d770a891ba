//! Every kind of state change Purser makes, as data.
//!
//! The service layer decides *whether* a change may happen and builds it; the store
//! applies it atomically, together with the audit record [`Change::audit_event`]
//! derives from it. Deriving the audit record here, from the change itself, means
//! no code path can change state without leaving one.

use purser_types::{
    AccountId, Actor, Agent, AgentId, AuditEvent, Currency, Hash32, Transfer, TransferId,
    TransferKind, Usdc, Wallet, WalletId,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A transfer the service has decided to make; the store applies it under the
/// rules of [`crate::ledger`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    /// The id, chosen before submission so a retry can be recognised.
    pub id: TransferId,
    /// Where the money comes from.
    pub from: AccountId,
    /// Where it goes.
    pub to: AccountId,
    /// How much.
    pub amount: Usdc,
    /// Why.
    pub kind: TransferKind,
    /// A free-text note.
    pub memo: Option<String>,
}

impl NewTransfer {
    /// The currency the transfer moves (that of its source).
    pub const fn currency(&self) -> Currency {
        self.from.currency
    }
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A person creates a wallet; its accounts are opened with it.
    CreateWallet {
        /// The wallet.
        wallet: Wallet,
        /// SHA-256 of the owner token; the token itself is never stored.
        owner_token_hash: Hash32,
        /// The wallet's secp256k1 key, sealed by the signer.
        sealed_key: String,
    },
    /// The owner registers an agent.
    RegisterAgent {
        /// The agent.
        agent: Agent,
        /// SHA-256 of the agent credential; the credential itself is never stored.
        credential_hash: Hash32,
    },
    /// The owner revokes an agent. Revoking twice changes nothing the second time.
    RevokeAgent {
        /// The wallet the agent must belong to.
        wallet: WalletId,
        /// The agent.
        agent: AgentId,
    },
    /// Money moves between two accounts.
    Transfer(NewTransfer),
}

/// What a change produced: the record as committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "record", rename_all = "snake_case")]
pub enum Outcome {
    /// A wallet.
    Wallet(Wallet),
    /// An agent.
    Agent(Agent),
    /// A transfer.
    Transfer(Transfer),
}

impl Change {
    /// A short stable name of the change, used in idempotency fingerprints.
    pub const fn name(&self) -> &'static str {
        match self {
            Change::CreateWallet { .. } => "create_wallet",
            Change::RegisterAgent { .. } => "register_agent",
            Change::RevokeAgent { .. } => "revoke_agent",
            Change::Transfer(_) => "transfer",
        }
    }

    /// The audit record this change leaves when it is applied. Never includes
    /// secrets: token hashes and sealed keys stay out of the trail.
    pub fn audit_event(&self, actor: Actor) -> AuditEvent {
        let (action, wallet_id, subject, details) = match self {
            Change::CreateWallet { wallet, .. } => (
                "wallet.created",
                Some(wallet.id),
                wallet.id.to_string(),
                json!({"name": wallet.name, "currency": wallet.currency, "address": wallet.address}),
            ),
            Change::RegisterAgent { agent, .. } => (
                "agent.registered",
                Some(agent.wallet_id),
                agent.id.to_string(),
                json!({"name": agent.name}),
            ),
            Change::RevokeAgent { wallet, agent } => {
                ("agent.revoked", Some(*wallet), agent.to_string(), json!({}))
            }
            Change::Transfer(transfer) => (
                transfer_action(transfer.kind),
                transfer.to.wallet.or(transfer.from.wallet),
                transfer.id.to_string(),
                json!({
                    "from": transfer.from,
                    "to": transfer.to,
                    "amount": transfer.amount,
                    "currency": transfer.currency(),
                    "kind": transfer.kind,
                    "memo": transfer.memo,
                }),
            ),
        };
        AuditEvent {
            actor,
            action: action.to_owned(),
            wallet_id,
            subject,
            details: details.to_string(),
        }
    }
}

const fn transfer_action(kind: TransferKind) -> &'static str {
    match kind {
        TransferKind::SandboxFunding => "wallet.funded",
        TransferKind::Adjustment => "ledger.transfer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use purser_types::{AccountKind, UnixMs};

    #[test]
    fn audit_events_carry_no_secrets() {
        let wallet = Wallet {
            id: WalletId::from_bytes([1; 16]),
            name: "ops".into(),
            currency: Currency::Usdc,
            address: "0xabc".into(),
            created_at: UnixMs(0),
        };
        let change = Change::CreateWallet {
            wallet: wallet.clone(),
            owner_token_hash: Hash32([0xee; 32]),
            sealed_key: "SEALED-KEY-MATERIAL".into(),
        };
        let event = change.audit_event(Actor::Owner(wallet.id));
        assert_eq!(event.action, "wallet.created");
        assert!(!event.details.contains("SEALED"));
        assert!(!event.details.contains(&Hash32([0xee; 32]).to_string()));
    }

    #[test]
    fn funding_is_audited_against_the_receiving_wallet() {
        let wallet = WalletId::from_bytes([2; 16]);
        let change = Change::Transfer(NewTransfer {
            id: TransferId::from_bytes([3; 16]),
            from: AccountId::system(AccountKind::SandboxOnramp, Currency::Usdc),
            to: AccountId::available(wallet, Currency::Usdc),
            amount: Usdc::from_whole(5).unwrap(),
            kind: TransferKind::SandboxFunding,
            memo: None,
        });
        let event = change.audit_event(Actor::Owner(wallet));
        assert_eq!(event.action, "wallet.funded");
        assert_eq!(event.wallet_id, Some(wallet));
        assert!(event.details.contains("\"amount\":\"5\""));
    }
}
