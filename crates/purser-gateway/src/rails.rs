//! The gateway's rails and offers: the shared x402 offer logic
//! ([`purser_types::x402::offer`]) applied to a priced route.

pub use purser_types::x402::offer::{Offer, Rail, chosen, rails_from_supported};

use crate::config::PricedRoute;

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
