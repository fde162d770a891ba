//! The gateway's rails and offers: the shared x402 offer logic
//! ([`purser_types::x402::offer`]) applied to a priced route.

pub use purser_types::x402::offer::{Offer, Rail, chosen, rails_from_supported};

use crate::config::{PricedRoute, PricedTool};

/// The requirements for one call of `route` at `resource_url`, paid to `pay_to`.
pub fn offer(
    route: &PricedRoute,
    pay_to: &str,
    rails: &[Rail],
    resource_url: &str,
    timeout_secs: u64,
) -> Offer {
    purser_types::x402::offer::offer(
        route.price,
        &route.description,
        pay_to,
        rails,
        resource_url,
        timeout_secs,
    )
}

/// The requirements for one call of the MCP tool `tool`, paid to `pay_to`: its
/// resource is `mcp://tool/<name>`, as x402's MCP transport names tools.
pub fn tool_offer(tool: &PricedTool, pay_to: &str, rails: &[Rail], timeout_secs: u64) -> Offer {
    purser_types::x402::offer::offer(
        tool.price,
        &tool.description,
        pay_to,
        rails,
        &purser_types::x402::mcp::tool_resource_url(&tool.name),
        timeout_secs,
    )
}
