//! What a seller offers: the ways it is paid ("rails", read from a facilitator's
//! `/supported`), the x402 requirements for one priced resource in both
//! versions, and which of them a payment header pays.

use serde_json::{Value, json};

use super::{PaymentPayload, SCHEME_EXACT, SupportedKind, SupportedResponse, Version};
use crate::money::Usdc;

/// One network a seller is paid on: `exact` in USDC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rail {
    /// The v2 (CAIP-2) network id: `eip155:8453`, `purser:ledger`.
    pub network: String,
    /// Its v1 name, where it has one.
    pub v1_network: Option<String>,
    /// The token's address.
    pub asset: String,
    /// The token's EIP-712 domain name.
    pub token_name: String,
    /// The token's EIP-712 domain version.
    pub token_version: String,
}

fn text(extra: &Value, key: &str) -> Option<String> {
    extra.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The rails a facilitator settles: each v2 `exact` kind that names its asset and
/// EIP-712 domain in `extra` (as Purser's facilitator does), with the v1 name of
/// the v1 kind for the same asset, if any.
pub fn rails_from_supported(supported: &SupportedResponse) -> Vec<Rail> {
    let exact = supported.kinds.iter().filter(|k| k.scheme == SCHEME_EXACT);
    let asset_of = |k: &SupportedKind| k.extra.as_ref().and_then(|e| text(e, "asset"));
    exact
        .clone()
        .filter(|k| k.x402_version == 2)
        .filter_map(|k| {
            let extra = k.extra.as_ref()?;
            let asset = text(extra, "asset")?;
            let v1_network = exact
                .clone()
                .find(|v1| v1.x402_version == 1 && asset_of(v1).as_deref() == Some(&asset))
                .map(|v1| v1.network.clone());
            Some(Rail {
                network: k.network.clone(),
                v1_network,
                asset,
                token_name: text(extra, "name")?,
                token_version: text(extra, "version")?,
            })
        })
        .collect()
}

/// What a seller asks for one use of a resource, in both versions.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// The v2 PaymentRequired (for the `PAYMENT-REQUIRED` header).
    pub v2: Value,
    /// The v1 PaymentRequired (the 402's JSON body); its `accepts` holds only the
    /// rails with a v1 name.
    pub v1: Value,
}

impl Offer {
    /// The offer, with `error` set to say what was wrong with a payment.
    pub fn with_error(&self, error: &str) -> Offer {
        let mut offer = self.clone();
        offer.v2["error"] = json!(error);
        offer.v1["error"] = json!(error);
        offer
    }

    /// The v2 requirements.
    pub fn v2_requirements(&self) -> &[Value] {
        self.v2["accepts"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The v1 requirements.
    pub fn v1_requirements(&self) -> &[Value] {
        self.v1["accepts"].as_array().map_or(&[], Vec::as_slice)
    }
}

/// The requirements for one use of the resource at `resource_url`, for `price`,
/// paid to `pay_to`, on every rail (v1: the rails with a v1 name).
pub fn offer(
    price: Usdc,
    description: &str,
    pay_to: &str,
    rails: &[Rail],
    resource_url: &str,
    timeout_secs: u64,
) -> Offer {
    let amount = price.atomic().to_string();
    let v2: Vec<Value> = rails
        .iter()
        .map(|r| {
            json!({
                "scheme": SCHEME_EXACT, "network": r.network, "amount": amount,
                "asset": r.asset, "payTo": pay_to, "maxTimeoutSeconds": timeout_secs,
                "extra": {"name": r.token_name, "version": r.token_version},
            })
        })
        .collect();
    let v1: Vec<Value> = rails
        .iter()
        .filter_map(|r| {
            Some(json!({
                "scheme": SCHEME_EXACT, "network": r.v1_network.as_ref()?,
                "maxAmountRequired": amount, "resource": resource_url,
                "description": description, "mimeType": "application/json",
                "payTo": pay_to, "maxTimeoutSeconds": timeout_secs, "asset": r.asset,
                "extra": {"name": r.token_name, "version": r.token_version},
            }))
        })
        .collect();
    Offer {
        v2: json!({
            "x402Version": 2,
            "error": "payment required",
            "resource": {"url": resource_url, "description": description, "mimeType": "application/json"},
            "accepts": v2,
        }),
        v1: json!({"x402Version": 1, "error": "payment required", "accepts": v1}),
    }
}

fn same_text(a: &Value, b: &Value, key: &str) -> bool {
    match (
        a.get(key).and_then(Value::as_str),
        b.get(key).and_then(Value::as_str),
    ) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// The payment in a payment header, and the offered requirement it pays (v2: the
/// one it says it `accepted`; v1: the one on its network). The error says why
/// there is none, in words for the payer.
pub fn chosen(offer: &Offer, header: &str) -> Result<(PaymentPayload, Value), String> {
    let payment = PaymentPayload::from_header(header)
        .map_err(|e| format!("the payment header is invalid: {e}"))?;
    chosen_payment(offer, payment)
}

/// [`chosen`] for a payment already read (MCP carries it as JSON in `_meta`).
pub fn chosen_payment(
    offer: &Offer,
    payment: PaymentPayload,
) -> Result<(PaymentPayload, Value), String> {
    let found = match payment.version {
        Version::V2 => payment.accepted.as_ref().and_then(|accepted| {
            offer.v2_requirements().iter().find(|offered| {
                ["scheme", "network", "amount", "asset", "payTo"]
                    .iter()
                    .all(|key| same_text(offered, accepted, key))
            })
        }),
        Version::V1 => offer.v1_requirements().iter().find(|offered| {
            offered["network"] == payment.network.as_str()
                && offered["scheme"] == payment.scheme.as_str()
        }),
    };
    let requirement = found
        .cloned()
        .ok_or_else(|| "the payment is for none of the requirements offered".to_owned())?;
    Ok((payment, requirement))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::x402::PaymentRequired;

    fn kind(version: u8, network: &str, asset: &str) -> SupportedKind {
        SupportedKind {
            x402_version: version,
            scheme: "exact".into(),
            network: network.into(),
            extra: Some(json!({"asset": asset, "name": "USD Coin", "version": "2"})),
        }
    }

    #[test]
    fn rails_come_from_the_kinds_that_name_their_asset() {
        let supported = SupportedResponse {
            kinds: vec![
                kind(2, "eip155:8453", "0xA"),
                kind(1, "base", "0xA"),
                kind(2, "purser:ledger", "0xB"),
                SupportedKind {
                    extra: None,
                    ..kind(2, "eip155:1", "0xC")
                },
            ],
            extensions: vec![],
            signers: Default::default(),
        };
        let rails = rails_from_supported(&supported);
        assert_eq!(rails.len(), 2);
        assert_eq!(rails[0].v1_network.as_deref(), Some("base"));
        assert_eq!(
            (rails[1].network.as_str(), rails[1].v1_network.as_ref()),
            ("purser:ledger", None)
        );
    }

    #[test]
    fn an_offer_reads_back_as_a_payment_required_in_both_versions() {
        let rails = vec![
            Rail {
                network: "eip155:8453".into(),
                v1_network: Some("base".into()),
                asset: "0xA".into(),
                token_name: "USD Coin".into(),
                token_version: "2".into(),
            },
            Rail {
                network: "purser:ledger".into(),
                v1_network: None,
                asset: "0xB".into(),
                token_name: "Purser Ledger".into(),
                token_version: "1".into(),
            },
        ];
        let offer = offer(
            "0.25".parse().unwrap(),
            "A",
            "0x4242424242424242424242424242424242424242",
            &rails,
            "http://h/a",
            60,
        );
        let v2 = PaymentRequired::from_json(&offer.v2).unwrap();
        assert_eq!(v2.accepts.len(), 2);
        assert_eq!(v2.accepts[0].amount.to_string(), "0.25");
        assert_eq!(
            v2.accepts[1].domain,
            Some(("Purser Ledger".into(), "1".into()))
        );
        let v1 = PaymentRequired::from_json(&offer.v1).unwrap();
        assert_eq!(v1.accepts.len(), 1, "the ledger rail has no v1 name here");
        assert_eq!(v1.accepts[0].resource.as_deref(), Some("http://h/a"));
        assert_eq!(offer.with_error("bad").v2["error"], "bad");
    }
}
