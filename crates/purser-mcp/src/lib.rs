//! Purser's MCP server: the agent's wallet as MCP tools (rmcp, the official Rust
//! SDK), over stdio (`purser mcp`) and streamable HTTP (`/mcp` on `purser serve`).
//!
//! It is a front end like the CLI: every tool is a call to Purser's HTTP API as
//! the agent, so the API's authentication, the one authorization path and its
//! stable error codes apply unchanged. A failed call comes back as a tool error
//! carrying the code and plain instructions the agent can act on
//! ([`guidance`]).

pub mod guidance;
mod http;
mod tools;

pub use http::{McpHttpConfig, http_router};
pub use tools::{PurserMcp, TOOL_NAMES};

use purser_client::ApiClient;
use rmcp::ServiceExt;

/// Why the MCP server stopped.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The transport failed to start or broke.
    #[error("MCP transport: {0}")]
    Transport(String),
}

/// Serves the tools over stdin/stdout until the client disconnects, calling the
/// API with `api` (an agent login or JWT).
pub async fn serve_stdio(api: ApiClient) -> Result<(), McpError> {
    let server = PurserMcp::with_client(api)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| McpError::Transport(e.to_string()))?;
    server
        .waiting()
        .await
        .map_err(|e| McpError::Transport(e.to_string()))?;
    Ok(())
}
