//! Monetize: Purser in front of an existing API. A gateway config prices routes
//! (method + path pattern → price, description, input schema); the paywall answers
//! unpaid calls with x402 402s, has paid ones verified and settled by a facilitator
//! (settling only when the service answered 2xx), and describes the service to
//! agents (`/skill.md` and a JSON price list). Use it as a tower layer in an axum
//! service ([`Paywall::layer`]) or as the reverse proxy `purser gateway`
//! ([`gateway_router`]). Tools of an MCP server behind it are priced per
//! `tools/call` and paid over x402's MCP transport ([`mcp`]).
//!
//! The config, path patterns, rails and skill text are pure; the paywall, the
//! facilitator client and the proxy are the HTTP front end.

pub mod config;
pub mod facilitator;
pub mod mcp;
pub mod paywall;
pub mod proxy;
pub mod rails;
pub mod routes;
pub mod skill;

pub use config::{
    ConfigError, GatewayConfig, GatewaySection, PricedRoute, PricedTool, ServiceInfo,
};
pub use facilitator::{FacilitatorClient, FacilitatorError};
pub use paywall::{
    Paywall, PaywallError, PaywallLayer, PaywallOptions, PaywallService, payment_required,
};
pub use proxy::{ProxyError, Upstream, gateway_router};
pub use rails::{Offer, Rail};
pub use routes::{PathPattern, RouteMatch};
