//! Monetize: Purser in front of an existing API. A gateway config prices routes
//! (method + path pattern → price, description, input schema); this crate reads and
//! validates it, matches requests to priced routes, and describes the service to
//! agents (`/skill.md` and a JSON price list). No IO: the HTTP proxy and the tower
//! layer that use it live with the front ends.

pub mod config;
pub mod routes;
pub mod skill;

pub use config::{ConfigError, GatewayConfig, PricedRoute, ServiceInfo};
pub use routes::{PathPattern, RouteMatch};
