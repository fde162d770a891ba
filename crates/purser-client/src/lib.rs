//! A client of Purser's HTTP API, shared by the `purser` CLI and the MCP server.
//!
//! - [`ApiClient`]: calls with idempotency keys and stable error codes; an agent
//!   credential is exchanged for a short-lived JWT and renewed before it expires.
//! - [`fetch`]: fetch a URL and pay its x402 402 through the wallet's one
//!   authorization path, reporting the outcome so the reservation is committed or
//!   released.

mod api;
pub mod fetch;
pub mod mcp;

pub use api::{Answer, ApiClient, ClientError, Login, new_idempotency_key};
