//! Agents: register, list, read, revoke, and exchange a credential for a JWT.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use purser_service::Principal;
use purser_types::{Agent, AgentId, Secret, WalletId};

use super::changed;
use crate::AppState;
use crate::dto::{
    AgentRegisteredResponse, AgentsList, MeResponse, RegisterAgentRequest, TokenRequest,
    TokenResponse,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, Auth, IdemKey};

/// Registers an agent on the wallet and returns its Agent ID and credential
/// (owner only; the credential is shown once).
#[utoipa::path(post, path = "/api/wallets/{walletId}/agents", tag = "agents",
    params(("walletId" = WalletId, Path), ("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    request_body = RegisterAgentRequest,
    responses(
        (status = 201, body = AgentRegisteredResponse),
        (status = 403, body = ErrorBody, description = "agent tokens cannot register agents"),
        (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn register_agent(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(wallet): ApiPath<WalletId>,
    IdemKey(key): IdemKey,
    ApiJson(body): ApiJson<RegisterAgentRequest>,
) -> Result<Response, ApiError> {
    let registered = app
        .purser
        .register_agent(&principal, wallet, &body.name, &key)
        .await?;
    let body = AgentRegisteredResponse::from(registered.value);
    Ok(changed(StatusCode::CREATED, body, registered.replayed))
}

/// The wallet's agents (owner only).
#[utoipa::path(get, path = "/api/wallets/{walletId}/agents", tag = "agents",
    params(("walletId" = WalletId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = AgentsList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_agents(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(wallet): ApiPath<WalletId>,
) -> Result<Json<AgentsList>, ApiError> {
    Ok(Json(AgentsList {
        items: app.purser.agents(&principal, wallet).await?,
    }))
}

/// One agent (its owner, or the agent itself).
#[utoipa::path(get, path = "/api/agents/{agentId}", tag = "agents",
    params(("agentId" = AgentId, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_agent(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(agent): ApiPath<AgentId>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(app.purser.agent(&principal, agent).await?))
}

/// Revokes an agent (owner only). From this moment its JWTs and credential are
/// refused with `agent_revoked`, even before the JWT expires.
#[utoipa::path(post, path = "/api/agents/{agentId}/revoke", tag = "agents",
    params(("agentId" = AgentId, Path), ("Idempotency-Key" = String, Header)),
    security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_agent(
    State(app): State<AppState>,
    Auth(principal): Auth,
    ApiPath(agent): ApiPath<AgentId>,
    IdemKey(key): IdemKey,
) -> Result<Response, ApiError> {
    let revoked = app.purser.revoke_agent(&principal, agent, &key).await?;
    Ok(changed(StatusCode::OK, revoked.value, revoked.replayed))
}

/// Exchanges an agent credential for a JWT of at most 15 minutes. Issuing a token
/// changes no state, so no idempotency key is needed.
#[utoipa::path(post, path = "/api/agents/token", tag = "agents",
    request_body = TokenRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorBody, description = "unauthenticated or agent_revoked"),
    ))]
pub(crate) async fn issue_token(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let credential = Secret::new(body.credential);
    let token = app
        .purser
        .issue_agent_token(body.agent_id, &credential)
        .await?;
    Ok(Json(TokenResponse {
        token: token.token.expose().clone(),
        token_type: "Bearer".into(),
        expires_in: token.expires_in_secs,
        expires_at: token.expires_at,
    }))
}

/// Who the bearer token belongs to.
#[utoipa::path(get, path = "/api/me", tag = "agents",
    security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody)))]
pub(crate) async fn me(Auth(principal): Auth) -> Json<MeResponse> {
    let (role, agent_id) = match principal {
        Principal::Owner { .. } => ("owner", None),
        Principal::Agent { agent, .. } => ("agent", Some(agent)),
    };
    Json(MeResponse {
        role: role.into(),
        wallet_id: principal.wallet(),
        agent_id,
    })
}
