//! Wallets, their agents, balances, transfers and audit trail.

use purser_core::change::{Change, NewTransfer, Outcome};
use purser_signer::WalletKey;
use purser_store::{Committed, Page, StoreError, WriteRequest};
use purser_types::{
    AccountId, AccountKind, Actor, Agent, AgentId, AgentStatus, AuditRecord, Balances, Currency,
    Secret, Transfer, TransferId, TransferKind, Usdc, Wallet, WalletId,
};

use crate::auth::{AGENT_CREDENTIAL_PREFIX, OWNER_TOKEN_PREFIX, Principal, new_secret};
use crate::idempotency::{IdempotencyKey, idempotency};
use crate::ids::new_id_bytes;
use crate::text::single_line;
use crate::{Purser, ServiceError};

/// The longest name a wallet or agent may have, in characters.
pub const NAME_MAX_CHARS: usize = 100;
/// The most the simulated on-ramp adds in one request.
pub const SANDBOX_FUNDING_MAX: Usdc = match Usdc::from_whole(1_000_000) {
    Ok(max) => max,
    Err(_) => Usdc::ZERO,
};

/// A result, and whether an earlier request with the same idempotency key made it.
#[derive(Debug)]
pub struct Replayable<T> {
    /// The result.
    pub value: T,
    /// True when this is the stored result of an earlier request.
    pub replayed: bool,
}

/// A new wallet and, the first time only, its owner token.
#[derive(Debug)]
pub struct WalletCreated {
    /// The wallet.
    pub wallet: Wallet,
    /// The owner token; `None` on a replay, because it is never stored.
    pub owner_token: Option<Secret<String>>,
}

/// A new agent and, the first time only, its credential.
#[derive(Debug)]
pub struct AgentRegistered {
    /// The agent.
    pub agent: Agent,
    /// The agent credential; `None` on a replay, because it is never stored.
    pub credential: Option<Secret<String>>,
}

/// A wallet with its balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletView {
    /// The wallet.
    pub wallet: Wallet,
    /// Its balances.
    pub balances: Balances,
}

pub(crate) fn corrupt(what: &str) -> ServiceError {
    ServiceError::Store(StoreError::Corrupt(format!(
        "unexpected outcome for {what}"
    )))
}

impl Purser {
    fn request(&self, actor: Actor, change: Change) -> WriteRequest {
        WriteRequest {
            at: self.inner.clock.now(),
            actor,
            idempotency: None,
            change,
        }
    }

    async fn commit(&self, request: WriteRequest) -> Result<Committed, ServiceError> {
        Ok(self.inner.store.write(request).await?)
    }

    /// Creates a wallet with a fresh secp256k1 key and owner token. Anyone may
    /// create a wallet; the token returned is the only way to act as its owner.
    pub async fn create_wallet(
        &self,
        name: &str,
        currency: Currency,
        key: &IdempotencyKey,
    ) -> Result<Replayable<WalletCreated>, ServiceError> {
        self.create_wallet_with_password(name, currency, None, key)
            .await
    }

    /// [`Purser::create_wallet`], with the password its owner will sign in to the
    /// dashboard with (stored as an Argon2id hash; the owner token works as well).
    pub async fn create_wallet_with_password(
        &self,
        name: &str,
        currency: Currency,
        password: Option<&Secret<String>>,
        key: &IdempotencyKey,
    ) -> Result<Replayable<WalletCreated>, ServiceError> {
        let name = single_line("name", name, NAME_MAX_CHARS)?;
        let password_hash = match password {
            Some(password) => Some(crate::dashboard::hash_password(password)?),
            None => None,
        };
        let id = WalletId::from_bytes(new_id_bytes(&*self.inner.clock)?);
        let wallet_key = WalletKey::generate()?;
        let sealed_key = wallet_key.seal(&self.inner.master, &id.to_string())?;
        let token = new_secret(OWNER_TOKEN_PREFIX)?;
        let wallet = Wallet {
            id,
            name: name.clone(),
            currency,
            address: wallet_key.address_checksummed(),
            created_at: self.inner.clock.now(),
        };
        let change = Change::CreateWallet {
            wallet,
            owner_token_hash: token.hash,
            sealed_key,
            password_hash,
        };
        let request = WriteRequest {
            idempotency: Some(idempotency(None, key, change.name(), &(&name, currency))?),
            ..self.request(Actor::Owner(id), change)
        };
        let committed = self.commit(request).await?;
        let Outcome::Wallet(wallet) = committed.outcome else {
            return Err(corrupt("create_wallet"));
        };
        let owner_token = (!committed.replayed).then_some(token.secret);
        Ok(Replayable {
            value: WalletCreated {
                wallet,
                owner_token,
            },
            replayed: committed.replayed,
        })
    }

    /// A wallet and its balances, for its owner or its agents.
    pub async fn wallet(
        &self,
        principal: &Principal,
        id: WalletId,
    ) -> Result<WalletView, ServiceError> {
        let wallet = self.wallet_record(principal, id).await?;
        let balances = self
            .inner
            .store
            .balances(id, wallet.currency)
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok(WalletView { wallet, balances })
    }

    /// A wallet without its balances (one read), for its owner or its agents.
    pub async fn wallet_record(
        &self,
        principal: &Principal,
        id: WalletId,
    ) -> Result<Wallet, ServiceError> {
        principal.require_member_of(id)?;
        self.inner
            .store
            .wallet(id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Adds test money from the simulated on-ramp (sandbox servers only).
    pub async fn fund_wallet(
        &self,
        principal: &Principal,
        id: WalletId,
        amount: Usdc,
        key: &IdempotencyKey,
    ) -> Result<Replayable<Transfer>, ServiceError> {
        principal.require_owner_of(id)?;
        if !self.inner.config.sandbox {
            return Err(ServiceError::SandboxDisabled);
        }
        if amount.is_zero() || amount > SANDBOX_FUNDING_MAX {
            return Err(ServiceError::InvalidRequest(format!(
                "amount must be more than 0 and at most {SANDBOX_FUNDING_MAX} USDC"
            )));
        }
        let change = Change::Transfer(NewTransfer {
            id: TransferId::from_bytes(new_id_bytes(&*self.inner.clock)?),
            from: AccountId::system(AccountKind::SandboxOnramp, Currency::Usdc),
            to: AccountId::available(id, Currency::Usdc),
            amount,
            kind: TransferKind::SandboxFunding,
            memo: Some("sandbox on-ramp".into()),
        });
        let request = WriteRequest {
            idempotency: Some(idempotency(
                Some(principal),
                key,
                change.name(),
                &(id, amount),
            )?),
            ..self.request(principal.actor(), change)
        };
        let committed = self.commit(request).await?;
        let Outcome::Transfer(transfer) = committed.outcome else {
            return Err(corrupt("fund_wallet"));
        };
        Ok(Replayable {
            value: transfer,
            replayed: committed.replayed,
        })
    }

    /// A wallet's transfers, newest first, each with its pagination cursor.
    pub async fn transfers(
        &self,
        principal: &Principal,
        id: WalletId,
        page: Page,
    ) -> Result<Vec<(i64, Transfer)>, ServiceError> {
        principal.require_member_of(id)?;
        let wallet = self
            .inner
            .store
            .wallet(id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok(self
            .inner
            .store
            .transfers(id, wallet.currency, page)
            .await?)
    }

    /// Registers an agent on the owner's wallet and returns its credential once.
    pub async fn register_agent(
        &self,
        principal: &Principal,
        wallet: WalletId,
        name: &str,
        key: &IdempotencyKey,
    ) -> Result<Replayable<AgentRegistered>, ServiceError> {
        principal.require_owner_of(wallet)?;
        let name = single_line("name", name, NAME_MAX_CHARS)?;
        let credential = new_secret(AGENT_CREDENTIAL_PREFIX)?;
        let agent = Agent {
            id: AgentId::from_bytes(new_id_bytes(&*self.inner.clock)?),
            wallet_id: wallet,
            name: name.clone(),
            status: AgentStatus::Active,
            created_at: self.inner.clock.now(),
            revoked_at: None,
        };
        let change = Change::RegisterAgent {
            agent,
            credential_hash: credential.hash,
        };
        let request = WriteRequest {
            idempotency: Some(idempotency(
                Some(principal),
                key,
                change.name(),
                &(wallet, &name),
            )?),
            ..self.request(principal.actor(), change)
        };
        let committed = self.commit(request).await?;
        let Outcome::Agent(agent) = committed.outcome else {
            return Err(corrupt("register_agent"));
        };
        let credential = (!committed.replayed).then_some(credential.secret);
        Ok(Replayable {
            value: AgentRegistered { agent, credential },
            replayed: committed.replayed,
        })
    }

    /// The agents of the owner's wallet.
    pub async fn agents(
        &self,
        principal: &Principal,
        wallet: WalletId,
    ) -> Result<Vec<Agent>, ServiceError> {
        principal.require_owner_of(wallet)?;
        Ok(self.inner.store.agents(wallet).await?)
    }

    /// One agent: for its wallet's owner, or for the agent itself.
    pub async fn agent(&self, principal: &Principal, id: AgentId) -> Result<Agent, ServiceError> {
        let agent = self
            .inner
            .store
            .agent(id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        principal.require_owner_or_agent(agent.wallet_id, agent.id)?;
        Ok(agent)
    }

    /// Revokes an agent: from the commit on, its JWTs and credential are refused.
    pub async fn revoke_agent(
        &self,
        principal: &Principal,
        id: AgentId,
        key: &IdempotencyKey,
    ) -> Result<Replayable<Agent>, ServiceError> {
        let wallet = principal.wallet();
        principal.require_owner_of(wallet)?;
        let change = Change::RevokeAgent { wallet, agent: id };
        let request = WriteRequest {
            idempotency: Some(idempotency(Some(principal), key, change.name(), &id)?),
            ..self.request(principal.actor(), change)
        };
        let committed = self.commit(request).await?;
        let Outcome::Agent(agent) = committed.outcome else {
            return Err(corrupt("revoke_agent"));
        };
        Ok(Replayable {
            value: agent,
            replayed: committed.replayed,
        })
    }

    /// The owner's view of their wallet's audit trail, newest first.
    pub async fn audit(
        &self,
        principal: &Principal,
        wallet: WalletId,
        page: Page,
    ) -> Result<Vec<AuditRecord>, ServiceError> {
        principal.require_owner_of(wallet)?;
        Ok(self.inner.store.audit_for_wallet(wallet, page).await?)
    }
}
