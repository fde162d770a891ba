//! `/mcp` over streamable HTTP, mounted by `purser serve`. Each request carries
//! the agent's JWT as a bearer token; the tools call the server's own API with
//! it, so a revoked agent is refused on its next call like on any route.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use purser_client::ApiClient;
use rmcp::transport::StreamableHttpServerConfig;
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use serde_json::json;

use crate::McpError;
use crate::tools::PurserMcp;

/// How `/mcp` is served.
#[derive(Debug, Clone)]
pub struct McpHttpConfig {
    /// The base URL of the Purser API the tools call (the server itself).
    pub api_base_url: String,
    /// `Host` values accepted (DNS-rebinding protection): host names or
    /// `host:port` authorities.
    pub allowed_hosts: Vec<String>,
}

/// A router serving MCP at `/mcp`: stateless streamable HTTP answering JSON,
/// refusing requests without a bearer token with 401.
pub fn http_router(config: &McpHttpConfig) -> Result<Router, McpError> {
    let base = ApiClient::new(&config.api_base_url, None)
        .map_err(|e| McpError::Transport(e.to_string()))?;
    let server = PurserMcp::per_request(base);
    let transport = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        transport,
    );
    Ok(Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn(require_bearer)))
}

/// A request without `Authorization: Bearer …` never reaches the MCP service.
async fn require_bearer(request: Request, next: Next) -> Response {
    let has_bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > "Bearer ".len());
    if has_bearer {
        return next.run(request).await;
    }
    let body = json!({ "error": {
        "code": "unauthenticated",
        "message": "send your agent JWT as `Authorization: Bearer <token>` (exchange your credential at POST /api/agents/token)",
    }});
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(body),
    )
        .into_response()
}
