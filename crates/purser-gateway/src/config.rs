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
    /// How the gateway runs, as far as the file says.
    pub gateway: GatewaySection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    service: RawService,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
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

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

impl GatewayConfig {
    /// Reads and validates a config file's text.
    pub fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            problems: vec![e.message().to_owned()],
        })?;
        let mut problems = Vec::new();
        let service = check_service(raw.service, &mut problems);
        if raw.routes.is_empty() {
            problems.push("no [[route]]: price at least one route".into());
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
                gateway: raw.gateway,
            })
        } else {
            Err(ConfigError { problems })
        }
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
    let price = match raw.price.parse::<Usdc>() {
        Ok(price) if price.is_zero() => {
            problems.push(format!("{}: a priced route costs more than 0", at("price")));
            None
        }
        Ok(price) => Some(price),
        Err(e) => {
            problems.push(format!(
                "{}: {:?} is not a USDC amount ({e})",
                at("price"),
                raw.price
            ));
            None
        }
    };
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
            "route[1].price: a priced route costs more than 0",
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
            vec!["no [[route]]: price at least one route".to_owned()]
        );
    }
}
