//! The OpenAPI document's frame: title, security scheme, tags. The paths and
//! schemas come from the handlers' `#[utoipa::path]` annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Purser API",
        description = "Payment infrastructure for AI agents. Amounts are USDC decimal strings \
            (6 decimals, e.g. \"0.002\"); errors are {\"error\":{\"code\",\"message\"}} with stable codes; \
            every request that creates something or moves money needs an Idempotency-Key header.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "system", description = "Health and discovery"),
        (name = "wallets", description = "Wallets, balances and the ledger"),
        (name = "agents", description = "Agent IDs, credentials and tokens"),
        (name = "audit", description = "The tamper-evident audit trail"),
        (name = "mandates", description = "Intent mandates: drafted by agents, signed once by owners"),
        (name = "payments", description = "The one authorization path: reservations and payouts"),
        (name = "approvals", description = "The owner's per-payment approvals and wallet policy"),
        (name = "charge", description = "AgentCharge: payment links, received payments, refunds and webhooks"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An owner token (purser_owner_…) or an agent JWT"))
                    .build(),
            ),
        );
    }
}

/// The document before routes add their paths.
pub(crate) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
