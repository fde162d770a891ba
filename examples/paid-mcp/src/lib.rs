//! A paid MCP server: an ordinary rmcp server whose tools know nothing about
//! payments, served over MCP's streamable HTTP at `/mcp`. `purser gateway` in
//! front of it prices `forecast` per call (see `monetize.toml`); `ping` stays
//! free. The gateway asks for payment, verifies it, forwards the call and settles
//! only when the tool succeeded — a `forecast` that fails (say, 30 days ahead) is
//! not charged.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{Json, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};

/// The price list for `purser gateway --routes`, as shipped beside this crate.
pub const MONETIZE_TOML: &str = include_str!("../monetize.toml");

/// The placeholder in [`MONETIZE_TOML`] for the address payments go to.
pub const PAY_TO_PLACEHOLDER: &str = "0xYOUR_WALLET_ADDRESS";

/// [`MONETIZE_TOML`] paying `pay_to`.
pub fn monetize_toml(pay_to: &str) -> String {
    MONETIZE_TOML.replace(PAY_TO_PLACEHOLDER, pay_to)
}

/// What `forecast` takes.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ForecastRequest {
    /// The city.
    pub city: String,
    /// How many days ahead, 1 to 7 (default 3).
    pub days: Option<u8>,
}

/// One day of a forecast.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct Day {
    /// Days from today (1 = tomorrow).
    pub day: u8,
    /// The weather in words.
    pub summary: String,
    /// The high, in °C.
    pub high_c: i32,
    /// The low, in °C.
    pub low_c: i32,
}

/// What `forecast` answers.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct Forecast {
    /// The city.
    pub city: String,
    /// Day by day.
    pub days: Vec<Day>,
}

/// The tools.
#[derive(Debug, Clone)]
pub struct WeatherTools {
    tool_router: ToolRouter<Self>,
}

impl Default for WeatherTools {
    fn default() -> Self {
        Self::new()
    }
}

const SKIES: [&str; 5] = ["sunny", "cloudy", "rain", "windy", "snow"];

#[tool_router]
impl WeatherTools {
    /// The server.
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    /// Free: is the server up?
    #[tool(description = "Answers pong: checks that the server is up.")]
    async fn ping(&self) -> String {
        "pong".to_owned()
    }

    /// A made-up but stable forecast (the same city gets the same weather).
    #[tool(description = "The weather forecast for a city, day by day (1 to 7 days).")]
    async fn forecast(
        &self,
        Parameters(request): Parameters<ForecastRequest>,
    ) -> Result<Json<Forecast>, String> {
        let city = request.city.trim();
        if city.is_empty() {
            return Err("name a city".to_owned());
        }
        let days = request.days.unwrap_or(3);
        if !(1..=7).contains(&days) {
            return Err(format!(
                "no forecast {days} days ahead: ask for 1 to 7 days"
            ));
        }
        let seed = city
            .to_lowercase()
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let days = (1..=days)
            .map(|day| {
                let n = seed.wrapping_add(u32::from(day).wrapping_mul(2_654_435_761));
                let high = i32::try_from(n % 25).unwrap_or(0) + 5;
                Day {
                    day,
                    summary: SKIES[(n as usize / 25) % SKIES.len()].to_owned(),
                    high_c: high,
                    low_c: high - 8,
                }
            })
            .collect();
        Ok(Json(Forecast {
            city: city.to_owned(),
            days,
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for WeatherTools {}

/// How the server answers a POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// With sessions (`Mcp-Session-Id`), each answer an event stream (SSE).
    Stream,
    /// Without sessions, each answer one `application/json` body.
    Json,
}

/// The server at `/mcp`, over streamable HTTP. It accepts loopback `Host`s only
/// (rmcp's guard against DNS rebinding), which is what a gateway on the same
/// machine sends.
pub fn router(answers: Answers) -> axum::Router {
    let config = match answers {
        Answers::Stream => StreamableHttpServerConfig::default(),
        Answers::Json => StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    };
    let service = StreamableHttpService::new(
        || Ok(WeatherTools::new()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    axum::Router::new().nest_service("/mcp", service)
}
