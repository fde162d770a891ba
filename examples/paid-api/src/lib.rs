//! A paid API in a few lines: an ordinary axum router, plus Purser's paywall as
//! one `.layer(…)`. `GET /api/joke` costs 0.001 USDC; `/` stays free; the layer
//! also serves `/skill.md` and `/skill.json` for agents.

use axum::Router;
use axum::routing::get;
use purser_gateway::{ConfigError, GatewayConfig, Paywall};

/// The prices: the same format `purser gateway --routes` reads.
pub fn config(pay_to: &str) -> Result<GatewayConfig, ConfigError> {
    GatewayConfig::parse(&format!(
        r#"
[service]
name = "Joke API"
description = "One programming joke per call."
pay_to = "{pay_to}"

[[route]]
method = "GET"
path = "/api/joke"
price = "0.001"
description = "A fresh joke"
"#
    ))
}

/// The service, behind the paywall.
pub fn app(paywall: &Paywall) -> Router {
    Router::new()
        .route("/", get(|| async { "Jokes for agents: GET /api/joke (see /skill.md)" }))
        .route(
            "/api/joke",
            get(|| async {
                axum::Json(serde_json::json!({
                    "joke": "There are 10 kinds of agents: those that read /skill.md and those that pay twice."
                }))
            }),
        )
        .layer(paywall.layer())
}
