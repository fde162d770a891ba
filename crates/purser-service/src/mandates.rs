//! Intent mandates: an agent drafts, the owner signs once (EIP-712, with the
//! wallet's key), anyone can verify the signature offline.

use purser_chain::mandate::{digest_hex, mandate_digest, verify};
use purser_core::change::{Change, Outcome};
use purser_core::host::normalize_host;
use purser_core::mandate::{MandateDraft, check_covers, status_at, validate_draft};
use purser_signer::random_bytes;
use purser_store::{MandateFilter, Page, WriteRequest};
use purser_types::{
    AgentId, Hash32, Mandate, MandateId, MandateSignature, MandateStatus, SignedMandate, UnixMs,
    Usdc, WalletId,
};

use crate::auth::Principal;
use crate::idempotency::{IdempotencyKey, idempotency};
use crate::ids::new_id_bytes;
use crate::wallets::{Replayable, corrupt};
use crate::{Purser, ServiceError};

/// A mandate as callers see it: the stored record, its status at this moment,
/// what is left of it, and where its owner reviews it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MandateView {
    /// The mandate.
    pub mandate: Mandate,
    /// Its status now (`expired` and `exhausted` are read off time and budget).
    pub status: MandateStatus,
    /// `limit − spent − pending`.
    pub remaining: Usdc,
    /// The page where the owner reviews and signs or rejects it.
    pub sign_url: String,
}

impl Purser {
    pub(crate) fn view(&self, mandate: Mandate) -> MandateView {
        let now = self.inner.clock.now();
        MandateView {
            status: status_at(&mandate, now),
            remaining: mandate.remaining_amount(),
            sign_url: format!(
                "{}/mandates/{}/review",
                self.inner.config.public_url.trim_end_matches('/'),
                mandate.id
            ),
            mandate,
        }
    }

    /// Runs `change` for `principal` with an idempotency key and returns the mandate it produced.
    async fn mandate_change(
        &self,
        principal: &Principal,
        change: Change,
        key: &IdempotencyKey,
        params: &impl serde::Serialize,
    ) -> Result<Replayable<MandateView>, ServiceError> {
        let request = WriteRequest {
            at: self.inner.clock.now(),
            actor: principal.actor(),
            idempotency: Some(idempotency(Some(principal), key, change.name(), params)?),
            change,
        };
        let committed = self.inner.store.write(request).await?;
        let Outcome::Mandate(mandate) = committed.outcome else {
            return Err(corrupt("mandate change"));
        };
        Ok(Replayable {
            value: self.view(mandate),
            replayed: committed.replayed,
        })
    }

    /// An agent drafts a mandate for its owner to sign. Nothing can be paid under it
    /// until then.
    pub async fn draft_mandate(
        &self,
        principal: &Principal,
        draft: &MandateDraft,
        key: &IdempotencyKey,
    ) -> Result<Replayable<MandateView>, ServiceError> {
        let Principal::Agent { agent, wallet } = *principal else {
            return Err(ServiceError::Forbidden(
                "mandates are drafted by agents; the owner signs them",
            ));
        };
        let now = self.inner.clock.now();
        let terms =
            validate_draft(draft, now).map_err(|e| ServiceError::InvalidRequest(e.to_string()))?;
        let mandate = Mandate {
            id: MandateId::from_bytes(new_id_bytes(&*self.inner.clock)?),
            wallet_id: wallet,
            agent_id: agent,
            terms,
            nonce: Hash32(random_bytes()?),
            status: MandateStatus::PendingSignature,
            spent_amount: Usdc::ZERO,
            pending_amount: Usdc::ZERO,
            signature: None,
            created_at: now,
            updated_at: now,
        };
        // The fingerprint covers what the agent sent, not the ids and times resolved from it.
        self.mandate_change(principal, Change::DraftMandate(mandate), key, draft)
            .await
    }

    /// The owner approves a pending mandate: the wallet's key signs its EIP-712 form.
    pub async fn approve_mandate(
        &self,
        principal: &Principal,
        id: MandateId,
        key: &IdempotencyKey,
    ) -> Result<Replayable<MandateView>, ServiceError> {
        let wallet = owner_wallet(principal, "an agent can never approve a mandate")?;
        let mandate = self.owned_mandate(wallet, id).await?;
        let signature = self.sign(wallet, &mandate).await?;
        let change = Change::SignMandate {
            wallet,
            mandate: id,
            signature,
        };
        self.mandate_change(principal, change, key, &("approve", id))
            .await
    }

    /// The owner rejects a pending mandate.
    pub async fn reject_mandate(
        &self,
        principal: &Principal,
        id: MandateId,
        key: &IdempotencyKey,
    ) -> Result<Replayable<MandateView>, ServiceError> {
        let wallet = owner_wallet(principal, "only the owner can reject a mandate")?;
        self.mandate_change(
            principal,
            Change::RejectMandate {
                wallet,
                mandate: id,
            },
            key,
            &("reject", id),
        )
        .await
    }

    /// The owner revokes a signed mandate: no payment can use it from now on.
    pub async fn revoke_mandate(
        &self,
        principal: &Principal,
        id: MandateId,
        key: &IdempotencyKey,
    ) -> Result<Replayable<MandateView>, ServiceError> {
        let wallet = owner_wallet(principal, "only the owner can revoke a mandate")?;
        self.mandate_change(
            principal,
            Change::RevokeMandate {
                wallet,
                mandate: id,
            },
            key,
            &("revoke", id),
        )
        .await
    }

    async fn sign(
        &self,
        wallet: WalletId,
        mandate: &Mandate,
    ) -> Result<MandateSignature, ServiceError> {
        let (key, address) = self.wallet_key(wallet).await?;
        let signer = address.to_checksum(None);
        let digest = mandate_digest(&signer, mandate.agent_id, &mandate.terms, &mandate.nonce)
            .map_err(|e| ServiceError::InvalidRequest(e.to_string()))?;
        Ok(MandateSignature {
            mandate_hash: digest_hex(&digest),
            signature: key.sign_digest(&digest)?,
            signer,
            signed_at: self.inner.clock.now(),
        })
    }

    async fn owned_mandate(
        &self,
        wallet: WalletId,
        id: MandateId,
    ) -> Result<Mandate, ServiceError> {
        let mandate = self
            .inner
            .store
            .mandate(id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        if mandate.wallet_id == wallet {
            Ok(mandate)
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// One mandate: for its wallet's owner, or the agent it belongs to.
    pub async fn mandate(
        &self,
        principal: &Principal,
        id: MandateId,
    ) -> Result<MandateView, ServiceError> {
        let mandate = self
            .inner
            .store
            .mandate(id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        principal.require_owner_or_agent(mandate.wallet_id, mandate.agent_id)?;
        Ok(self.view(mandate))
    }

    /// The owner's mandates (all agents), or an agent's own; newest first.
    pub async fn mandates(
        &self,
        principal: &Principal,
        status: Option<MandateStatus>,
        page: Page,
    ) -> Result<Vec<MandateView>, ServiceError> {
        self.mandates_of(principal, status, None, page).await
    }

    /// [`Purser::mandates`], for the owner optionally only one agent's.
    pub async fn mandates_of(
        &self,
        principal: &Principal,
        status: Option<MandateStatus>,
        agent: Option<AgentId>,
        page: Page,
    ) -> Result<Vec<MandateView>, ServiceError> {
        let agent = match principal {
            Principal::Owner { .. } => agent,
            Principal::Agent { agent, .. } => Some(*agent),
        };
        // Expired and exhausted are read off signed mandates at this moment.
        let stored = status.map(|s| match s {
            MandateStatus::Expired | MandateStatus::Exhausted => MandateStatus::Signed.as_str(),
            other => other.as_str(),
        });
        let filter = MandateFilter {
            agent,
            status: stored,
        };
        let mandates = self
            .inner
            .store
            .mandates(principal.wallet(), filter, page)
            .await?;
        let views = mandates.into_iter().map(|m| self.view(m));
        Ok(views
            .filter(|v| status.is_none_or(|s| v.status == s))
            .collect())
    }

    /// The agent's mandates that could cover a payment of `amount` to `host` right now.
    pub async fn eligible_mandates(
        &self,
        principal: &Principal,
        host: Option<&str>,
        amount: Usdc,
    ) -> Result<Vec<MandateView>, ServiceError> {
        let Principal::Agent { agent, .. } = *principal else {
            return Err(ServiceError::Forbidden(
                "eligible mandates are listed for an agent",
            ));
        };
        let host = host
            .map(normalize_host)
            .transpose()
            .map_err(|e| ServiceError::InvalidRequest(format!("host: {e}")))?;
        let now = self.inner.clock.now();
        let mandates = self.inner.store.mandates_in_force(agent, now).await?;
        let mut eligible: Vec<Mandate> = mandates
            .into_iter()
            .filter(|m| check_covers(m, amount, host.as_ref(), now).is_ok())
            .collect();
        eligible.sort_by_key(|m| (m.remaining_amount(), m.terms.valid_until, m.id));
        Ok(eligible.into_iter().map(|m| self.view(m)).collect())
    }

    /// A signed mandate in the form anyone can verify offline.
    pub async fn signed_mandate(
        &self,
        principal: &Principal,
        id: MandateId,
    ) -> Result<SignedMandate, ServiceError> {
        let view = self.mandate(principal, id).await?;
        let signature = view
            .mandate
            .signature
            .clone()
            .ok_or(ServiceError::InvalidState(
                "the mandate has not been signed",
            ))?;
        let wallet = self
            .inner
            .store
            .wallet(view.mandate.wallet_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok(SignedMandate {
            mandate_id: view.mandate.id,
            wallet_address: wallet.address,
            agent_id: view.mandate.agent_id,
            terms: view.mandate.terms,
            nonce: view.mandate.nonce,
            mandate_hash: signature.mandate_hash,
            signature: signature.signature,
        })
    }

    /// Checks a signed mandate's hash and signature; returns the signer. Needs no
    /// access to Purser's data: this is what a payee does.
    pub fn verify_mandate(signed: &SignedMandate) -> Result<String, ServiceError> {
        verify(signed).map_err(|e| ServiceError::InvalidSignature(e.to_string()))
    }

    /// The current time, for views.
    pub fn now(&self) -> UnixMs {
        self.inner.clock.now()
    }
}

/// For owner-only mandate decisions: agents are refused outright.
fn owner_wallet(principal: &Principal, refusal: &'static str) -> Result<WalletId, ServiceError> {
    match principal {
        Principal::Owner { wallet } => Ok(*wallet),
        Principal::Agent { .. } => Err(ServiceError::Forbidden(refusal)),
    }
}

/// What the owner's review page shows about a mandate.
#[derive(Debug, Clone)]
pub struct MandateReview {
    /// The mandate.
    pub view: MandateView,
    /// The agent's name.
    pub agent_name: String,
    /// The wallet's name.
    pub wallet_name: String,
    /// Whether the agent was revoked (its mandates then pay nothing, whatever their status).
    pub agent_revoked: bool,
}

impl Purser {
    /// A mandate for its review page. The page's URL (the `signUrl`) carries the
    /// mandate's unguessable id; deciding still takes the owner token.
    pub async fn mandate_for_review(&self, id: MandateId) -> Result<MandateReview, ServiceError> {
        let store = &self.inner.store;
        let mandate = store.mandate(id).await?.ok_or(ServiceError::NotFound)?;
        let agent = store
            .agent(mandate.agent_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let wallet = store
            .wallet(mandate.wallet_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok(MandateReview {
            view: self.view(mandate),
            agent_revoked: agent.status == purser_types::AgentStatus::Revoked,
            agent_name: agent.name,
            wallet_name: wallet.name,
        })
    }

    /// An approval for its review page, with the asking agent's name.
    pub async fn approval_for_review(
        &self,
        id: purser_types::ApprovalId,
    ) -> Result<(purser_types::Approval, String), ServiceError> {
        let store = &self.inner.store;
        let approval = store.approval(id).await?.ok_or(ServiceError::NotFound)?;
        let agent = store
            .agent(approval.agent_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        Ok((approval, agent.name))
    }
}
