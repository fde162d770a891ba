//! What the gateway tells agents about the service: `/skill.md` (for an agent to
//! read) and a JSON price list beside it, both generated from the config, so they
//! cannot drift from what the gateway charges.

use purser_types::Usdc;
use serde_json::{Value, json};

use purser_types::x402::mcp::tool_resource_url;

use crate::config::GatewayConfig;
use crate::rails::Rail;

/// Calls a mandate should cover, per Purser's skill: about a hundred.
pub const MANDATE_CALLS: u64 = 100;

fn host_of(base_url: &str) -> String {
    url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A budget for about [`MANDATE_CALLS`] calls at the highest price.
fn suggested_budget(config: &GatewayConfig) -> Usdc {
    let routes = config.routes.iter().map(|r| r.price.atomic());
    let tools = config.mcp_tools.iter().map(|t| t.price.atomic());
    let highest = routes.chain(tools).max().unwrap_or(0);
    Usdc::from_atomic(highest.saturating_mul(MANDATE_CALLS)).unwrap_or(Usdc::MAX)
}

/// The JSON price list (`/skill.json`).
pub fn price_list(config: &GatewayConfig, base_url: &str, rails: &[Rail]) -> Value {
    let base = base_url.trim_end_matches('/');
    let endpoints: Vec<Value> = config
        .routes
        .iter()
        .map(|r| {
            json!({
                "method": r.method, "path": r.path.to_string(),
                "url": format!("{base}{}", r.path),
                "price": r.price.to_string(), "priceAtomic": r.price.atomic().to_string(),
                "description": r.description, "inputSchema": r.input_schema,
            })
        })
        .collect();
    let tools: Vec<Value> = config
        .mcp_tools
        .iter()
        .map(|t| {
            json!({
                "endpoint": format!("{base}{}", t.path), "path": t.path, "name": t.name,
                "resource": tool_resource_url(&t.name),
                "price": t.price.to_string(), "priceAtomic": t.price.atomic().to_string(),
                "description": t.description,
            })
        })
        .collect();
    let networks: Vec<Value> = rails
        .iter()
        .map(|r| json!({"network": r.network, "v1Network": r.v1_network, "asset": r.asset}))
        .collect();
    json!({
        "service": {
            "name": config.service.name, "description": config.service.description,
            "url": base, "payTo": config.service.pay_to,
        },
        "payment": {
            "protocol": "x402", "x402Version": 2, "scheme": "exact", "currency": "USDC",
            "networks": networks,
        },
        "endpoints": endpoints,
        "mcpTools": tools,
    })
}

/// `network `eip155:8453` (asset `0x…`) or …`, naming the ledger rail for what it is.
fn networks_in_words(rails: &[Rail]) -> String {
    let named: Vec<String> = rails
        .iter()
        .map(|r| {
            if r.network == purser_types::x402::LEDGER_NETWORK {
                format!(
                    "network `{}` (Purser's internal ledger, when your wallet is on the same Purser server: instant, no gas)",
                    r.network
                )
            } else {
                format!("network `{}` (asset `{}`)", r.network, r.asset)
            }
        })
        .collect();
    if named.is_empty() {
        "no network yet (the gateway's facilitator offered none)".to_owned()
    } else {
        named.join(" or ")
    }
}

/// Markdown table cells: one line, no pipes.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// A name for the frontmatter: lower case, words joined by `-`.
fn slug(name: &str) -> String {
    let words: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    words.join("-")
}

/// `/skill.md`: what the service does, each endpoint and MCP tool with its price
/// (and an endpoint's input), and how an agent pays (x402, or Purser under a
/// mandate).
pub fn skill_md(config: &GatewayConfig, base_url: &str, rails: &[Rail]) -> String {
    let base = base_url.trim_end_matches('/');
    let service = &config.service;
    let mut out = format!(
        "---\nname: {}\ndescription: {} Paid per call in USDC over x402.\n---\n\n# {}\n\n{}\n\n",
        slug(&service.name),
        cell(&service.description),
        service.name,
        service.description
    );
    if !config.routes.is_empty() {
        out.push_str(&endpoints_md(config));
    }
    if !config.mcp_tools.is_empty() {
        out.push_str(&tools_md(config, base));
    }
    out.push_str("\n## How to pay\n\n");
    if !config.routes.is_empty() {
        out.push_str(&format!(
            "Every endpoint above answers an unpaid call with HTTP 402 and a `PAYMENT-REQUIRED` \
             header (x402 v2; the v1 JSON body too): scheme `exact` in USDC, to `{pay_to}`, on \
             {networks}. Sign an EIP-3009 authorization for the price and \
             send the call again with `PAYMENT-SIGNATURE`. You are charged only when the call \
             succeeds; the answer carries `PAYMENT-RESPONSE` with the settlement.\n\n\
             With a Purser wallet, `purser fetch` does all of it:\n\n\
             ```sh\npurser fetch '{example}\n```\n\n",
            networks = networks_in_words(rails),
            pay_to = service.pay_to,
            example = fetch_example(config, base),
        ));
    }
    if let Some(tool) = config.mcp_tools.first() {
        out.push_str(&format!(
            "A `tools/call` of a priced MCP tool without payment is answered with a tool result \
             that has `isError: true` and carries the x402 PaymentRequired (in \
             `structuredContent`, and in `content[0].text` wrapped in `x402/error`; resource \
             `mcp://tool/<name>`): scheme `exact` in USDC, to `{pay_to}`, on {networks}. Call \
             again with the signed PaymentPayload (JSON) in `params._meta[\"x402/payment\"]` \
             (x402's MCP transport). You are charged only when the tool succeeds; the result \
             carries the settlement in `_meta[\"x402/payment-response\"]`. With a Purser \
             wallet, Purser's MCP server and client pay such calls for you: the URL paid for is \
             the MCP endpoint (`{base}{path}`), then the tool's name (`{name}`).\n\n",
            networks = networks_in_words(rails),
            pay_to = service.pay_to,
            path = tool.path,
            name = tool.name,
        ));
    }
    out.push_str(&format!(
        "Reuse an intent mandate that covers host `{host}`; if none does, propose one sized \
         for about {calls} calls (a budget of {budget} USDC) and show its `signUrl` to your \
         human:\n\n\
         ```sh\npurser mandate create --description 'Calls to {name}' --host {host} --limit {budget}\n```\n\n\
         Prices as JSON: `{base}/skill.json`.\n",
        host = host_of(base),
        calls = MANDATE_CALLS,
        budget = suggested_budget(config),
        name = cell(&service.name),
    ));
    out
}

fn endpoints_md(config: &GatewayConfig) -> String {
    let mut out = "## Endpoints\n\n| Method | Path | Price (USDC) | What it does | Input |\n|---|---|---:|---|---|\n".to_owned();
    for route in &config.routes {
        let input = route.input_schema.as_ref().map_or_else(
            || "—".to_owned(),
            |schema| format!("`{}`", cell(&schema.to_string())),
        );
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            route.method,
            route.path,
            route.price,
            cell(&route.description),
            input
        ));
    }
    out
}

fn tools_md(config: &GatewayConfig, base: &str) -> String {
    let mut out =
        "\n## MCP tools\n\nTools of an MCP server (streamable HTTP) at the endpoint named; \
                   each `tools/call` of one is paid per call. Its other tools are free.\n\n\
                   | Endpoint | Tool | Price (USDC) | What it does |\n|---|---|---:|---|\n"
            .to_owned();
    for tool in &config.mcp_tools {
        out.push_str(&format!(
            "| `{base}{}` | `{}` | {} | {} |\n",
            tool.path,
            cell(&tool.name),
            tool.price,
            cell(&tool.description)
        ));
    }
    out
}

fn fetch_example(config: &GatewayConfig, base: &str) -> String {
    config.routes.first().map_or_else(String::new, |r| {
        let data = if r.method == "GET" { "" } else { " -d '{…}'" };
        format!(
            "{base}{}' -X {}{data} --max-amount {}",
            r.path, r.method, r.price
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CONFIG: &str = r#"
[service]
name = "Weather API"
description = "Forecasts | for any city."
pay_to = "0x4242424242424242424242424242424242424242"

[[route]]
method = "POST"
path = "/api/query"
price = "0.01"
description = "Answer one query"
input_schema = { type = "object", required = ["q"] }

[[route]]
method = "GET"
path = "/api/cities/{city}"
price = "0.002"
description = "A city"
"#;

    fn terms() -> Vec<Rail> {
        vec![Rail {
            network: "eip155:8453".into(),
            v1_network: Some("base".into()),
            asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913".into(),
            token_name: "USD Coin".into(),
            token_version: "2".into(),
        }]
    }

    #[test]
    fn the_skill_names_every_endpoint_price_and_how_to_pay() {
        let config = GatewayConfig::parse(CONFIG).unwrap();
        let md = skill_md(&config, "https://api.weather.example/", &terms());
        assert!(md.starts_with("---\nname: weather-api\ndescription: Forecasts \\| for any city."));
        assert!(md.contains("| POST | `/api/query` | 0.01 | Answer one query | `{\"required\":[\"q\"],\"type\":\"object\"}` |"));
        assert!(md.contains("| GET | `/api/cities/{city}` | 0.002 | A city | — |"));
        assert!(md.contains(
            "on network `eip155:8453` (asset `0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913`)."
        ));
        assert!(md.contains("in USDC, to `0x4242424242424242424242424242424242424242`"));
        assert!(md.contains("purser fetch 'https://api.weather.example/api/query' -X POST -d '{…}' --max-amount 0.01"));
        assert!(
            md.contains("--host api.weather.example --limit 1\n"),
            "{md}"
        );
    }

    #[test]
    fn the_price_list_is_the_config_in_json() {
        let config = GatewayConfig::parse(CONFIG).unwrap();
        let list = price_list(&config, "https://api.weather.example", &terms());
        assert_eq!(list["payment"]["networks"][0]["network"], "eip155:8453");
        assert_eq!(list["payment"]["networks"][0]["v1Network"], "base");
        assert_eq!(list["endpoints"][0]["priceAtomic"], "10000");
        assert_eq!(
            list["endpoints"][1]["url"],
            "https://api.weather.example/api/cities/{city}"
        );
        assert_eq!(list["endpoints"][0]["inputSchema"]["required"][0], "q");
        assert!(list["endpoints"][1]["inputSchema"].is_null());
    }

    #[test]
    fn priced_mcp_tools_are_listed_with_their_prices_and_how_to_pay() {
        let with_tools = format!(
            "{CONFIG}\n[[mcp_tool]]\npath = \"/mcp\"\nname = \"forecast\"\nprice = \"0.05\"\ndescription = \"A forecast\"\n"
        );
        let config = GatewayConfig::parse(&with_tools).unwrap();
        let md = skill_md(&config, "https://api.weather.example", &terms());
        assert!(md.contains("| GET | `/api/cities/{city}` | 0.002 | A city | — |"));
        assert!(
            md.contains("| `https://api.weather.example/mcp` | `forecast` | 0.05 | A forecast |"),
            "{md}"
        );
        assert!(md.contains("`params._meta[\"x402/payment\"]`"));
        assert!(
            md.contains("--host api.weather.example --limit 5\n"),
            "{md}"
        );
        let list = price_list(&config, "https://api.weather.example", &terms());
        let tool = &list["mcpTools"][0];
        assert_eq!(tool["endpoint"], "https://api.weather.example/mcp");
        assert_eq!(tool["name"], "forecast");
        assert_eq!(tool["priceAtomic"], "50000");
        assert_eq!(tool["resource"], "mcp://tool/forecast");

        let service = CONFIG.split("[[route]]").next().unwrap();
        let tools_only = format!("{service}{}", &with_tools[CONFIG.len()..]);
        let config = GatewayConfig::parse(&tools_only).unwrap();
        let md = skill_md(&config, "https://api.weather.example", &terms());
        assert!(
            !md.contains("## Endpoints") && !md.contains("purser fetch"),
            "{md}"
        );
        assert!(md.contains("## MCP tools"));
    }
}
