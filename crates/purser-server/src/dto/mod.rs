//! Request and response bodies that are not domain records themselves.

mod links;
mod payments;
mod x402;

pub use links::*;
pub use payments::*;
pub use x402::*;

use purser_service::{AgentRegistered, WalletCreated, WalletView};
use purser_types::{
    Agent, AgentId, AuditRecord, Balances, Currency, Transfer, UnixMs, Usdc, Wallet, WalletId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// Not `Debug`: it carries a password.
/// `POST /api/wallets`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWalletRequest {
    /// A name for the wallet (1-100 characters).
    pub name: String,
    /// Only `USDC`; the default.
    pub currency: Option<Currency>,
    /// A password (12-256 characters) to sign in to the dashboard with, besides the
    /// owner token. Stored only as an Argon2id hash.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<String>,
}

/// A new wallet and its owner token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletCreatedResponse {
    /// The wallet.
    pub wallet: Wallet,
    /// The owner token, shown this once. `null` when this is a replay of an earlier
    /// request: the token is never stored, only its hash.
    pub owner_token: Option<String>,
}

impl From<WalletCreated> for WalletCreatedResponse {
    fn from(created: WalletCreated) -> Self {
        Self {
            wallet: created.wallet,
            owner_token: created.owner_token.map(|t| t.expose().clone()),
        }
    }
}

/// A wallet with its balances.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WalletResponse {
    /// The wallet.
    pub wallet: Wallet,
    /// Its balances.
    pub balances: Balances,
}

impl From<WalletView> for WalletResponse {
    fn from(view: WalletView) -> Self {
        Self {
            wallet: view.wallet,
            balances: view.balances,
        }
    }
}

/// `POST /api/wallets/{walletId}/fund`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FundRequest {
    /// How much test USDC to add, as a decimal string.
    pub amount: Usdc,
}

/// A page of transfers, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransfersPage {
    /// The transfers.
    pub items: Vec<Transfer>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// `POST /api/wallets/{walletId}/agents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterAgentRequest {
    /// A name for the agent (1-100 characters).
    pub name: String,
}

/// A new agent and its credential.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentRegisteredResponse {
    /// The agent; its `id` is the Agent ID.
    pub agent: Agent,
    /// The agent credential, shown this once (`null` on a replay). Exchange it at
    /// `POST /api/agents/token` for a short-lived JWT.
    pub credential: Option<String>,
}

impl From<AgentRegistered> for AgentRegisteredResponse {
    fn from(registered: AgentRegistered) -> Self {
        Self {
            agent: registered.agent,
            credential: registered.credential.map(|c| c.expose().clone()),
        }
    }
}

/// A list of agents.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentsList {
    /// The agents, oldest first.
    pub items: Vec<Agent>,
}

/// `POST /api/agents/token`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// The Agent ID.
    pub agent_id: AgentId,
    /// The agent credential from registration.
    pub credential: String,
}

/// A short-lived agent JWT.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// The JWT; send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until it expires (at most 900).
    pub expires_in: u64,
    /// When it expires.
    pub expires_at: UnixMs,
}

/// Who the bearer token belongs to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeResponse {
    /// `owner` or `agent`.
    pub role: String,
    /// The caller's wallet.
    pub wallet_id: WalletId,
    /// The caller's Agent ID, for agents.
    pub agent_id: Option<AgentId>,
}

/// A page of audit records, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// The records.
    pub items: Vec<AuditRecord>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// `GET /healthz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    /// `ok` when the database answers.
    pub database: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The server's version.
    pub version: String,
}
