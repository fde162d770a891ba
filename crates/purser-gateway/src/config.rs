//! The gateway's config file (`monetize.toml`), validated as a whole at start:
//! every problem is reported at once, each naming where it is.
//!
//! ```toml
//! [service]
//! name = "Weather API"
//! description = "Forecasts for any city, by the hour."
//! pay_to = "0x…"                 # the seller's address
//!
//! [[route]]
//! method = "POST"
//! path = "/api/query"           # `{name}` matches one segment; a final `*` the rest
//! price = "0.01"                # USDC, at most 6 decimals
//! description = "Answer one query"
//! input_schema = { type = "object", required = ["q"], properties = { q = { type = "string" } } }
//!
//! [[mcp_tool]]                  # a tool of the MCP server (streamable HTTP) at `path`
//! path = "/mcp"                 # the MCP endpoint: one exact path
//! name = "forecast"             # the tool's name, as `tools/list` gives it
//! price = "0.01"                # per `tools/call`, paid over x402's MCP transport
//! description = "A three-day forecast for a city"
//!
//! [gateway]                     # optional; flags and PURSER_GATEWAY_* env win
//! upstream = "http://127.0.0.1:3000"
//! facilitator = "http://127.0.0.1:8080/facilitator"
//! listen = "127.0.0.1:4021"
//! public_url = "https://api.example.com"
//! timeout_ms = 30000            # per paid call, until the upstream's answer ends
//! max_body_bytes = 1048576      # per request body
//! ```

use std::collections::HashSet;
use std::fmt;

use alloy_primitives::Address;
use purser_types::Usdc;
use serde::Deserialize;

use crate::routes::PathPattern;

/// Longest service or route description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 1000;

/// Longest MCP tool name, in characters (as MCP recommends).
pub const TOOL_NAME_MAX_CHARS: usize = 128;

/// Every problem found in a config, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Each problem, naming where it is (`route[2].price: …`).
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the gateway config is invalid:")?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// What the service is, as agents will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Its name.
    pub name: String,
    /// What it does, in plain words.
    pub description: String,
    /// Where payments go (checksummed).
    pub pay_to: String,
}

/// One priced route.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedRoute {
    /// The HTTP method, upper case.
    pub method: String,
    /// The path pattern.
    pub path: PathPattern,
    /// The price of one call.
    pub price: Usdc,
    /// What the call does.
    pub description: String,
    /// The JSON schema of its input, if given.
    pub input_schema: Option<serde_json::Value>,
}

/// One priced tool of an MCP server behind the gateway: a `tools/call` of `name`
/// POSTed to `path` is paid over x402's MCP transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedTool {
    /// The MCP endpoint's path (`/mcp`), exact.
    pub path: String,
    /// The tool's name.
    pub name: String,
    /// The price of one call.
    pub price: Usdc,
    /// What the tool does.
    pub description: String,
}

impl PricedTool {
    /// Whether a request path is this tool's endpoint (a trailing `/` allowed:
    /// servers mounted at a path commonly answer there too).
    pub fn serves(&self, path: &str) -> bool {
        same_endpoint(&self.path, path)
    }
}

fn same_endpoint(endpoint: &str, path: &str) -> bool {
    path == endpoint
        || path
            .strip_suffix('/')
            .is_some_and(|p| p == endpoint.trim_end_matches('/'))
}

/// How the gateway runs, where the file says (each may also come from a flag or
/// the environment, which win).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// The API behind the gateway.
    pub upstream: Option<String>,
    /// The x402 facilitator's base URL (Purser's: `<server>/facilitator`).
    pub facilitator: Option<String>,
    /// Where the gateway listens.
    pub listen: Option<String>,
    /// The gateway's public base URL (resource URLs and `/skill.md` use it).
    pub public_url: Option<String>,
    /// How long one call may take, until the upstream's answer ends.
    pub timeout_ms: Option<u64>,
    /// The largest request body accepted.
    pub max_body_bytes: Option<usize>,
}

/// A validated config.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// The service.
    pub service: ServiceInfo,
    /// Its priced routes, in file order (the first match wins).
    pub routes: Vec<PricedRoute>,
    /// Its priced MCP tools, in file order.
    pub mcp_tools: Vec<PricedTool>,
    /// How the gateway runs, as far as the file says.
    pub gateway: GatewaySection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    service: RawService,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
    #[serde(default, rename = "mcp_tool")]
    mcp_tools: Vec<RawTool>,
    #[serde(default)]
    gateway: GatewaySection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    description: String,
    pay_to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    method: String,
    path: String,
    price: String,
    description: String,
    input_schema: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    path: String,
    name: String,
    price: String,
    description: String,
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

impl GatewayConfig {
    /// Reads and validates a config file's text.
    pub fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            problems: vec![e.message().to_owned()],
        })?;
        let mut problems = Vec::new();
        let service = check_service(raw.service, &mut problems);
        if raw.routes.is_empty() && raw.mcp_tools.is_empty() {
            problems.push("nothing is priced: add a [[route]] or an [[mcp_tool]]".into());
        }
        let mut seen = HashSet::new();
        let mut routes = Vec::with_capacity(raw.routes.len());
        for (i, raw_route) in raw.routes.into_iter().enumerate() {
            let Some(route) = check_route(i, raw_route, &mut problems) else {
                continue;
            };
            if seen.insert((route.method.clone(), route.path.to_string())) {
                routes.push(route);
            } else {
                problems.push(format!(
                    "route {} {} is priced twice",
                    route.method, route.path
                ));
            }
        }
        let mut mcp_tools: Vec<PricedTool> = Vec::with_capacity(raw.mcp_tools.len());
        for (i, raw_tool) in raw.mcp_tools.into_iter().enumerate() {
            let Some(tool) = check_tool(i, raw_tool, &mut problems) else {
                continue;
            };
            if let Some(route) = routes.iter().find(|r| {
                r.method == "POST"
                    && (r.path.matches(&tool.path).is_some()
                        || r.path.matches(&format!("{}/", tool.path)).is_some())
            }) {
                problems.push(format!(
                    "mcp_tool[{i}].path: POST {} is also the priced [[route]] {}; price the endpoint's tools or the endpoint, not both",
                    tool.path, route.path
                ));
            } else if mcp_tools
                .iter()
                .any(|t| t.name == tool.name && same_endpoint(&t.path, &tool.path))
            {
                problems.push(format!(
                    "mcp_tool {} at {} is priced twice",
                    tool.name, tool.path
                ));
            } else {
                mcp_tools.push(tool);
            }
        }
        if raw.gateway.timeout_ms == Some(0) {
            problems.push("gateway.timeout_ms: must be above 0".into());
        }
        if raw.gateway.max_body_bytes == Some(0) {
            problems.push("gateway.max_body_bytes: must be above 0".into());
        }
        if problems.is_empty() {
            Ok(GatewayConfig {
                service,
                routes,
                mcp_tools,
                gateway: raw.gateway,
            })
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Whether `path` is the endpoint of an MCP server with priced tools.
    pub fn is_mcp_endpoint(&self, path: &str) -> bool {
        self.mcp_tools.iter().any(|t| t.serves(path))
    }

    /// The priced tool `name` of the MCP endpoint at `path`, if it is priced.
    pub fn mcp_tool(&self, path: &str, name: &str) -> Option<&PricedTool> {
        self.mcp_tools
            .iter()
            .find(|t| t.name == name && t.serves(path))
    }

    /// The priced route a request falls under, if any (the first in file order).
    pub fn route_for(&self, method: &str, path: &str) -> Option<&PricedRoute> {
        self.routes
            .iter()
            .find(|r| r.method.eq_ignore_ascii_case(method) && r.path.matches(path).is_some())
    }
}

fn check_text(field: &str, text: &str, problems: &mut Vec<String>) -> String {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        problems.push(format!("{field}: must not be empty"));
    } else if trimmed.chars().count() > DESCRIPTION_MAX_CHARS {
        problems.push(format!(
            "{field}: at most {DESCRIPTION_MAX_CHARS} characters"
        ));
    }
    trimmed.to_owned()
}

fn check_service(raw: RawService, problems: &mut Vec<String>) -> ServiceInfo {
    let pay_to = match raw.pay_to.trim().parse::<Address>() {
        Ok(address) if address != Address::ZERO => address.to_checksum(None),
        Ok(_) => {
            problems.push("service.pay_to: the zero address burns payments".into());
            String::new()
        }
        Err(_) => {
            problems.push(format!(
                "service.pay_to: {:?} is not an address (0x and 40 hex digits)",
                raw.pay_to
            ));
            String::new()
        }
    };
    ServiceInfo {
        name: check_text("service.name", &raw.name, problems),
        description: check_text("service.description", &raw.description, problems),
        pay_to,
    }
}

fn check_price(at: &str, text: &str, problems: &mut Vec<String>) -> Option<Usdc> {
    match text.parse::<Usdc>() {
        Ok(price) if price.is_zero() => {
            problems.push(format!("{at}: a priced call costs more than 0"));
            None
        }
        Ok(price) => Some(price),
        Err(e) => {
            problems.push(format!("{at}: {text:?} is not a USDC amount ({e})"));
            None
        }
    }
}

fn check_tool(index: usize, raw: RawTool, problems: &mut Vec<String>) -> Option<PricedTool> {
    let at = |field: &str| format!("mcp_tool[{index}].{field}");
    let before = problems.len();
    let path = raw.path.trim();
    match PathPattern::parse(path) {
        Err(e) => problems.push(format!("{}: {e}", at("path"))),
        Ok(_) if path.contains(['{', '*']) => problems.push(format!(
            "{}: {path:?}: an MCP endpoint is one exact path (no {{param}} or *)",
            at("path")
        )),
        Ok(_) => {}
    }
    let name = raw.name.trim();
    if name.is_empty() || name.chars().count() > TOOL_NAME_MAX_CHARS {
        problems.push(format!(
            "{}: a tool name has 1 to {TOOL_NAME_MAX_CHARS} characters",
            at("name")
        ));
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        problems.push(format!(
            "{}: {name:?} has spaces or control characters",
            at("name")
        ));
    }
    let price = check_price(&at("price"), &raw.price, problems);
    let description = check_text(&at("description"), &raw.description, problems);
    if problems.len() > before {
        return None;
    }
    Some(PricedTool {
        path: path.to_owned(),
        name: name.to_owned(),
        price: price?,
        description,
    })
}

fn check_route(index: usize, raw: RawRoute, problems: &mut Vec<String>) -> Option<PricedRoute> {
    let at = |field: &str| format!("route[{index}].{field}");
    let before = problems.len();
    let method = raw.method.trim().to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        problems.push(format!(
            "{}: {:?} is not one of {}",
            at("method"),
            raw.method,
            METHODS.join(", ")
        ));
    }
    let path = PathPattern::parse(&raw.path)
        .map_err(|e| problems.push(format!("{}: {e}", at("path"))))
        .ok();
    let price = check_price(&at("price"), &raw.price, problems);
    let description = check_text(&at("description"), &raw.description, problems);
    let input_schema = match raw.input_schema.map(serde_json::to_value).transpose() {
        Ok(Some(schema)) if !schema.is_object() => {
            problems.push(format!("{}: a JSON schema is a table", at("input_schema")));
            None
        }
        Ok(schema) => schema,
        Err(e) => {
            problems.push(format!("{}: {e}", at("input_schema")));
            None
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(PricedRoute {
        method,
        path: path?,
        price: price?,
        description,
        input_schema,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = r#"
[service]
name = "Weather API"
description = "Forecasts for any city."
pay_to = "0x4242424242424242424242424242424242424242"

[[route]]
method = "post"
path = "/api/query"
price = "0.01"
description = "Answer one query"
input_schema = { type = "object", required = ["q"], properties = { q = { type = "string" } } }

[[route]]
method = "GET"
path = "/api/cities/{city}/forecast"
price = "0.002"
description = "A city's forecast"
"#;

    #[test]
    fn a_good_config_reads_and_matches_routes() {
        let config = GatewayConfig::parse(GOOD).unwrap();
        assert_eq!(config.service.name, "Weather API");
        assert_eq!(
            config.service.pay_to,
            "0x4242424242424242424242424242424242424242"
        );
        let query = config.route_for("POST", "/api/query").unwrap();
        assert_eq!(
            (query.method.as_str(), query.price.atomic()),
            ("POST", 10_000)
        );
        assert_eq!(query.input_schema.as_ref().unwrap()["required"][0], "q");
        let city = config
            .route_for("get", "/api/cities/oslo/forecast")
            .unwrap();
        assert_eq!(city.price.atomic(), 2_000);
        assert!(config.route_for("GET", "/api/query").is_none());
        assert!(config.route_for("GET", "/api/cities/oslo").is_none());
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_place() {
        let bad = r#"
[service]
name = ""
description = "x"
pay_to = "0x12"

[[route]]
method = "FETCH"
path = "api/query"
price = "0.0000001"
description = "a"

[[route]]
method = "GET"
path = "/a"
price = "0"
description = "b"

[[route]]
method = "GET"
path = "/b"
price = "1"
description = "c"

[[route]]
method = "GET"
path = "/b"
price = "2"
description = "d"
"#;
        let problems = GatewayConfig::parse(bad).unwrap_err().problems;
        let expect = [
            "service.name: must not be empty",
            "service.pay_to:",
            "route[0].method: \"FETCH\"",
            "route[0].path:",
            "route[0].price:",
            "route[1].price: a priced call costs more than 0",
            "route GET /b is priced twice",
        ];
        for start in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(start)),
                "{start:?} not in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    }

    #[test]
    fn unknown_keys_and_a_missing_route_are_errors() {
        let typo = GOOD.replace("price = \"0.01\"", "prise = \"0.01\"");
        let error = GatewayConfig::parse(&typo).unwrap_err().to_string();
        assert!(error.contains("prise"), "{error}");
        let no_routes = GOOD.split("[[route]]").next().unwrap();
        let error = GatewayConfig::parse(no_routes).unwrap_err();
        assert_eq!(
            error.problems,
            vec!["nothing is priced: add a [[route]] or an [[mcp_tool]]".to_owned()]
        );
    }

    const TOOLS: &str = r#"
[service]
name = "Weather tools"
description = "Forecasts as MCP tools."
pay_to = "0x4242424242424242424242424242424242424242"

[[mcp_tool]]
path = "/mcp"
name = "forecast"
price = "0.01"
description = "A three-day forecast"

[[mcp_tool]]
path = "/mcp"
name = "history.daily"
price = "0.002"
description = "Yesterday's weather"
"#;

    #[test]
    fn mcp_tools_alone_are_a_config_and_match_their_endpoint() {
        let config = GatewayConfig::parse(TOOLS).unwrap();
        assert!(config.routes.is_empty());
        let forecast = config.mcp_tool("/mcp", "forecast").unwrap();
        assert_eq!(forecast.price.atomic(), 10_000);
        assert_eq!(
            config
                .mcp_tool("/mcp/", "history.daily")
                .unwrap()
                .price
                .atomic(),
            2_000
        );
        assert!(config.mcp_tool("/mcp", "ping").is_none());
        assert!(
            config.mcp_tool("/mcp", "Forecast").is_none(),
            "names are case-sensitive"
        );
        assert!(config.mcp_tool("/other", "forecast").is_none());
        assert!(config.is_mcp_endpoint("/mcp") && config.is_mcp_endpoint("/mcp/"));
        assert!(!config.is_mcp_endpoint("/mcp/x") && !config.is_mcp_endpoint("/mc"));
    }

    #[test]
    fn every_mcp_tool_problem_is_reported_with_its_place() {
        let bad = r#"
[service]
name = "Tools"
description = "x"
pay_to = "0x4242424242424242424242424242424242424242"

[[route]]
method = "POST"
path = "/rpc"
price = "0.1"
description = "the whole endpoint"

[[mcp_tool]]
path = "mcp"
name = ""
price = "-1"
description = " "

[[mcp_tool]]
path = "/mcp/{tenant}"
name = "two words"
price = "0"
description = "a"

[[mcp_tool]]
path = "/mcp"
name = "a"
price = "0.01"
description = "a"

[[mcp_tool]]
path = "/mcp"
name = "a"
price = "0.02"
description = "again"

[[mcp_tool]]
path = "/rpc"
name = "b"
price = "0.01"
description = "b"
"#;
        let problems = GatewayConfig::parse(bad).unwrap_err().problems;
        let expect = [
            "mcp_tool[0].path:",
            "mcp_tool[0].name: a tool name has 1 to 128 characters",
            "mcp_tool[0].price: \"-1\" is not a USDC amount",
            "mcp_tool[0].description: must not be empty",
            "mcp_tool[1].path: \"/mcp/{tenant}\": an MCP endpoint is one exact path",
            "mcp_tool[1].name: \"two words\" has spaces",
            "mcp_tool[1].price: a priced call costs more than 0",
            "mcp_tool a at /mcp is priced twice",
            "mcp_tool[4].path: POST /rpc is also the priced [[route]] /rpc",
        ];
        for start in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(start)),
                "{start:?} not in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
        let typo = TOOLS.replace("name = \"forecast\"", "tool = \"forecast\"");
        let error = GatewayConfig::parse(&typo).unwrap_err().to_string();
        assert!(error.contains("tool"), "{error}");
    }
}
