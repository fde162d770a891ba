//! Purser's application services: every operation a person or an agent can ask
//! for, whatever the front end (HTTP API, CLI, MCP).
//!
//! A call here authenticates nothing itself — front ends turn a bearer token into
//! a [`Principal`] with [`Purser::authenticate`] — but it checks that the principal
//! may act on the object, validates input, decides the change, and hands it to the
//! store, which applies it durably with its audit record. Knows no HTTP or JSON.

pub mod auth;
mod chain_payouts;
mod dashboard;
mod deposits;
mod error;
mod facilitator;
mod idempotency;
mod ids;
mod ledger_rail;
mod links;
mod mandates;
mod payments;
mod payouts;
mod refunds;
mod text;
mod wallets;
mod webhooks;
mod x402;

use std::sync::Arc;

use purser_chain::client::{ChainClient, ChainError};
use purser_core::Clock;
use purser_signer::{MasterKey, TokenSigningKey};
use purser_store::Store;
use purser_types::{AgentId, Secret};

pub use auth::{AgentToken, Jwk, Principal};
pub use chain_payouts::PAYOUT_VALIDITY_SECS;
pub use dashboard::{
    AuditStatus, CHART_DAYS, Overview, OwnerSession, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS,
    SESSION_TTL_MS, SignIn, first_day_start,
};
pub use deposits::Reconciliation;
pub use error::{ServiceError, denial_message};
pub use idempotency::{IDEMPOTENCY_KEY_MAX_LEN, IdempotencyKey};
pub use links::{
    LINK_CONTENT_MAX_BYTES, LINK_DESCRIPTION_MAX_CHARS, LinkCharge, LinkDraft, LinkPatch, LinkView,
};
pub use mandates::{MandateReview, MandateView};
pub use payments::{PURPOSE_MAX_CHARS, PaymentIntent};
pub use payouts::PayoutRequest;
pub use purser_core::change::Authorization;
pub use purser_core::mandate::MandateDraft;
pub use purser_store::Page;
pub use purser_store::{PaymentCursor, PaymentFilter, SpendByHost};
pub use refunds::{REFUND_APPROVAL_TTL_SECS, RefundRequest, RefundView};
pub use wallets::{
    AgentRegistered, NAME_MAX_CHARS, Replayable, SANDBOX_FUNDING_MAX, WalletCreated, WalletView,
};
pub use webhooks::{
    WEBHOOK_EVENT_ID_HEADER, WEBHOOK_EVENT_TYPE_HEADER, WEBHOOK_SIGNATURE_HEADER,
    verify_webhook_signature, webhook_signature,
};
pub use x402::{MAX_VALIDITY_SECS, X402Answer, X402Outcome, X402PayRequest, X402Signed, nonce_of};

/// Settings of the service layer.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Whether the simulated on-ramp may fund wallets.
    pub sandbox: bool,
    /// This server's public base URL: the `iss` of agent JWTs, and the base of the
    /// `signUrl` and `approvalUrl` agents hand to their owner.
    pub public_url: String,
    /// Agent JWT lifetime in seconds (at most 900).
    pub agent_token_ttl_secs: u64,
    /// How long an owner has to decide a per-payment approval, in seconds.
    pub approval_ttl_secs: u64,
    /// The chain wallets live on, if any; without one, Purser runs on its internal
    /// ledger alone.
    pub chain: Option<Arc<ChainClient>>,
    /// The first block the deposit scanner reads (the devnet token's deploy block;
    /// on public networks, the block Purser was first started at).
    pub chain_start_block: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            sandbox: true,
            public_url: "http://127.0.0.1:8402".into(),
            agent_token_ttl_secs: 600,
            approval_ttl_secs: 600,
            chain: None,
            chain_start_block: 0,
        }
    }
}

struct Inner {
    store: Store,
    master: MasterKey,
    tokens: auth::TokenAuthority,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
    in_flight: chain_payouts::InFlight,
    /// Wakes the webhook delivery task when an event is written.
    webhook_wake: tokio::sync::Notify,
    webhook_http: reqwest::Client,
    dashboard: dashboard::DashboardState,
}

/// The service. Cheap to clone.
#[derive(Clone)]
pub struct Purser {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Purser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Purser")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

const META_MASTER_KEY_FINGERPRINT: &str = "master_key_fingerprint";
const META_AGENT_TOKEN_KEY: &str = "agent_token_key";

impl Purser {
    /// Starts the service on an open store. Refuses a master key other than the
    /// one the database was created with, and creates the agent-token signing key
    /// on first start (two servers starting together agree on one).
    pub async fn start(
        store: Store,
        master: MasterKey,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> Result<Purser, ServiceError> {
        let fingerprint = master.fingerprint();
        if store
            .meta_init(META_MASTER_KEY_FINGERPRINT, &fingerprint)
            .await?
            != fingerprint
        {
            return Err(ServiceError::MasterKeyMismatch);
        }
        let candidate = TokenSigningKey::generate()?.seal(&master)?;
        let sealed = store.meta_init(META_AGENT_TOKEN_KEY, &candidate).await?;
        let signing_key = TokenSigningKey::unseal(&master, &sealed)?;
        let tokens = auth::TokenAuthority::new(
            &signing_key,
            config.public_url.clone(),
            config.agent_token_ttl_secs,
        )?;
        let inner = Inner {
            store,
            master,
            tokens,
            clock,
            config,
            in_flight: chain_payouts::InFlight::default(),
            webhook_wake: tokio::sync::Notify::new(),
            webhook_http: webhooks::webhook_client()?,
            dashboard: dashboard::DashboardState::default(),
        };
        Ok(Purser {
            inner: Arc::new(inner),
        })
    }

    /// The store, for operator tools and health checks.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The service's settings.
    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// The public keys that verify agent JWTs.
    pub fn jwks(&self) -> Vec<Jwk> {
        vec![self.inner.tokens.jwk().clone()]
    }

    /// For requests whose change is decided by the committer against the agent's
    /// row, locked (payment authorizations, payouts): the token is verified here and
    /// the revocation check is left to that decision, which makes it atomically with
    /// the reservation and answers `agent_revoked` all the same. Saves a read per
    /// payment; every other request uses [`Purser::authenticate`].
    pub async fn authenticate_for_payment(&self, bearer: &str) -> Result<Principal, ServiceError> {
        match auth::classify(bearer) {
            auth::Bearer::Jwt(token) => {
                let (agent, wallet) = self.inner.tokens.verify(token, self.inner.clock.now())?;
                Ok(Principal::Agent { agent, wallet })
            }
            _ => self.authenticate(bearer).await,
        }
    }

    /// Turns a bearer token into a principal. Owner tokens are looked up by hash;
    /// agent JWTs are verified and the agent's row is read on every call, so a
    /// revocation takes effect on the next request.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, ServiceError> {
        match auth::classify(bearer) {
            auth::Bearer::OwnerToken(token) => {
                let wallet = self
                    .inner
                    .store
                    .wallet_by_owner_token(&auth::hash_secret(token))
                    .await?;
                wallet.map(|w| Principal::Owner { wallet: w.id }).ok_or(
                    ServiceError::Unauthenticated("the owner token is not valid"),
                )
            }
            auth::Bearer::AgentCredential => Err(ServiceError::Unauthenticated(
                "an agent credential is not a bearer token: exchange it at POST /api/agents/token",
            )),
            auth::Bearer::Jwt(token) => {
                let (agent_id, wallet) = self.inner.tokens.verify(token, self.inner.clock.now())?;
                let agent = self
                    .inner
                    .store
                    .agent(agent_id)
                    .await?
                    .filter(|a| a.wallet_id == wallet)
                    .ok_or(ServiceError::Unauthenticated(
                        "the bearer token is not valid",
                    ))?;
                auth::check_agent_active(agent.status)?;
                Ok(Principal::Agent {
                    agent: agent.id,
                    wallet,
                })
            }
        }
    }

    /// Exchanges an agent credential for a short-lived JWT.
    pub async fn issue_agent_token(
        &self,
        agent_id: AgentId,
        credential: &Secret<String>,
    ) -> Result<AgentToken, ServiceError> {
        const REFUSED: ServiceError =
            ServiceError::Unauthenticated("the agent id or credential is not valid");
        let agent = self
            .inner
            .store
            .agent_by_credential(&auth::hash_secret(credential.expose()))
            .await?
            .filter(|a| a.id == agent_id)
            .ok_or(REFUSED)?;
        auth::check_agent_active(agent.status)?;
        self.inner
            .tokens
            .issue(agent.id, agent.wallet_id, self.inner.clock.now())
    }
}

impl Purser {
    /// The chain wallets live on; `chain_not_configured` without one.
    pub(crate) fn chain(&self) -> Result<&ChainClient, ServiceError> {
        self.inner
            .config
            .chain
            .as_deref()
            .ok_or(ServiceError::ChainNotConfigured)
    }

    /// Keeps the wallets in step until `stop` resolves, every `every`: follows open
    /// x402 payments to their end (on the ledger rail, releases the expired), link
    /// payments a crash left settling, and pending refunds; with a chain, records
    /// new deposits and sends authorized payouts. The first round also verifies the
    /// audit chain, so the dashboard's audit page later checks only what is new. A
    /// round under way finishes before it stops.
    pub async fn watch(
        &self,
        every: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let has_chain = self.inner.config.chain.is_some();
        let mut audit_verified = false;
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {}
            }
            if !audit_verified {
                match self.audit_status().await {
                    Ok(_) => audit_verified = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "audit chain verification failed; retrying")
                    }
                }
            }
            if has_chain && let Err(e) = self.scan_deposits().await {
                tracing::warn!(error = %e, "deposit scan failed; retrying");
            }
            if let Err(e) = self.resolve_open_x402().await {
                tracing::warn!(error = %e, "x402 resolution failed; retrying");
            }
            if has_chain && let Err(e) = self.send_open_payouts().await {
                tracing::warn!(error = %e, "sending payouts failed; retrying");
            }
            if let Err(e) = self.resolve_stale_link_payments().await {
                tracing::warn!(error = %e, "link payment resolution failed; retrying");
            }
            if let Err(e) = self.follow_pending_refunds().await {
                tracing::warn!(error = %e, "following refunds failed; retrying");
            }
        }
    }
}

/// A chain call that failed: the node is down or slow, or refused; nothing was paid.
pub(crate) fn chain_unavailable(error: ChainError) -> ServiceError {
    ServiceError::ChainUnavailable(error.to_string())
}
