//! The x402 wire format, versions 1 and 2, as the reference implementation speaks it.
//!
//! Headers carry base64 (standard alphabet) of UTF-8 JSON. Parts that a peer must get
//! back byte for byte — the chosen requirement (`accepted`), `extra`, `extensions`,
//! `resource` — are kept as the JSON they arrived as and echoed verbatim; only the
//! fields Purser decides on are read into typed form.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Usdc;

/// v2: the server's 402 answer carries the PaymentRequired here.
pub const HEADER_PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
/// v2: the client's payment.
pub const HEADER_PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
/// v2: the settlement result.
pub const HEADER_PAYMENT_RESPONSE: &str = "PAYMENT-RESPONSE";
/// v1: the client's payment.
pub const HEADER_X_PAYMENT: &str = "X-PAYMENT";
/// v1: the settlement result.
pub const HEADER_X_PAYMENT_RESPONSE: &str = "X-PAYMENT-RESPONSE";
/// The only scheme Purser pays or facilitates.
pub const SCHEME_EXACT: &str = "exact";
/// The network id of Purser's internal ledger rail: a payment between two wallets
/// of one Purser server, settled on its ledger with no chain.
pub const LEDGER_NETWORK: &str = "purser:ledger";
/// The headers a payment comes in (v2, then v1).
pub const PAYMENT_HEADERS: [&str; 2] = [HEADER_PAYMENT_SIGNATURE, HEADER_X_PAYMENT];

pub mod mcp;
pub mod offer;

macro_rules! reasons {
    ($($(#[$meta:meta])* $variant:ident => $code:literal,)+) => {
        /// Why a payment is invalid or did not settle: the reference implementation's
        /// codes, spelled as it spells them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$meta])* $variant,)+
        }

        impl Reason {
            /// Every reason, for documentation and tests.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)+];

            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $code,)+
                }
            }

            /// Parses the wire spelling.
            pub fn parse(text: &str) -> Option<Reason> {
                Reason::ALL.iter().copied().find(|r| r.as_str() == text)
            }
        }
    };
}

reasons! {
    /// The payer's balance is below the amount.
    InsufficientFunds => "insufficient_funds",
    /// The network is not one this facilitator serves.
    InvalidNetwork => "invalid_network",
    /// The payload is not valid base64, JSON or shape.
    InvalidPayload => "invalid_payload",
    /// The requirements are malformed (amount, addresses, domain).
    InvalidPaymentRequirements => "invalid_payment_requirements",
    /// The payload's and the requirement's scheme differ.
    InvalidScheme => "invalid_exact_evm_scheme",
    /// A scheme other than `exact`.
    UnsupportedScheme => "unsupported_scheme",
    /// An x402 version other than 1 or 2.
    InvalidX402Version => "invalid_x402_version",
    /// The settlement transaction reverted or moved the wrong amount.
    InvalidTransactionState => "invalid_transaction_state",
    /// Verification could not run (the chain did not answer).
    UnexpectedVerifyError => "unexpected_verify_error",
    /// Settlement could not run (the chain did not answer).
    UnexpectedSettleError => "unexpected_settle_error",
    /// The EIP-712 signature does not recover to `from`.
    InvalidSignature => "invalid_exact_evm_signature",
    /// The signature is not 65 bytes of hex.
    FailedToParseSignature => "invalid_exact_evm_failed_to_parse_signature",
    /// `to` is not the requirement's `payTo`.
    RecipientMismatch => "invalid_exact_evm_recipient_mismatch",
    /// `validBefore` is not at least 6 seconds away.
    ValidBefore => "invalid_exact_evm_payload_authorization_valid_before",
    /// `validAfter` is in the future.
    ValidAfter => "invalid_exact_evm_payload_authorization_valid_after",
    /// `value` is not exactly the amount asked.
    ValueMismatch => "invalid_exact_evm_payload_authorization_value_mismatch",
    /// The payload is for another network than the requirement.
    NetworkMismatch => "invalid_exact_evm_network_mismatch",
    /// The requirement lacks the token's EIP-712 name and version.
    MissingEip712Domain => "invalid_exact_evm_missing_eip712_domain",
    /// The token's EIP-712 name is not the one this network's USDC uses.
    TokenNameMismatch => "invalid_exact_evm_token_name_mismatch",
    /// The token's EIP-712 version is not the one this network's USDC uses.
    TokenVersionMismatch => "invalid_exact_evm_token_version_mismatch",
    /// The payer's USDC balance is below the amount.
    InsufficientBalance => "invalid_exact_evm_insufficient_balance",
    /// The settlement transaction reverted.
    TransactionFailed => "invalid_exact_evm_transaction_failed",
    /// The mined transaction does not hold the expected `Transfer`.
    TransferEventMismatch => "invalid_exact_evm_transfer_event_mismatch",
    /// The authorization's nonce was already used or canceled.
    NonceAlreadyUsed => "invalid_exact_evm_nonce_already_used",
    /// Simulating the transfer failed.
    SimulationFailed => "invalid_exact_evm_transaction_simulation_failed",
    /// The asset has no code on chain.
    AssetNotDeployed => "asset_not_deployed_contract",
    /// The transaction was sent; its receipt did not arrive in time.
    SettlementPending => "settlement_pending",
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why x402 input could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct WireError {
    /// The reason code.
    pub reason: Reason,
    /// What was wrong, for a person.
    pub message: String,
}

fn wire_error(reason: Reason, message: impl Into<String>) -> WireError {
    WireError {
        reason,
        message: message.into(),
    }
}

/// Encodes a value as a header: base64 of its JSON.
pub fn encode_header<T: Serialize>(value: &T) -> Result<String, WireError> {
    let json =
        serde_json::to_vec(value).map_err(|e| wire_error(Reason::InvalidPayload, e.to_string()))?;
    Ok(STANDARD.encode(json))
}

/// Decodes a header: base64 (padding optional), then JSON.
pub fn decode_header(text: &str) -> Result<Value, WireError> {
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .map_err(|_| wire_error(Reason::InvalidPayload, "the header is not valid base64"))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        wire_error(
            Reason::InvalidPayload,
            format!("the header is not JSON: {e}"),
        )
    })
}

/// A protocol version Purser speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// JSON body 402s, `X-PAYMENT`, network names.
    V1,
    /// Header 402s, `PAYMENT-SIGNATURE`, CAIP-2 networks.
    V2,
}

impl Version {
    /// The number on the wire.
    pub const fn number(self) -> u8 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
        }
    }

    fn read(object: &Map<String, Value>) -> Result<Version, WireError> {
        match object.get("x402Version").and_then(Value::as_u64) {
            Some(1) => Ok(Version::V1),
            Some(2) => Ok(Version::V2),
            _ => Err(wire_error(
                Reason::InvalidX402Version,
                "x402Version must be 1 or 2",
            )),
        }
    }

    /// The header that carries a payment in this version.
    pub const fn payment_header(self) -> &'static str {
        match self {
            Version::V1 => HEADER_X_PAYMENT,
            Version::V2 => HEADER_PAYMENT_SIGNATURE,
        }
    }

    /// The header that carries the settlement answer in this version.
    pub const fn response_header(self) -> &'static str {
        match self {
            Version::V1 => HEADER_X_PAYMENT_RESPONSE,
            Version::V2 => HEADER_PAYMENT_RESPONSE,
        }
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.number())
    }
}

fn object(value: &Value, what: &str) -> Result<Map<String, Value>, WireError> {
    value
        .as_object()
        .cloned()
        .ok_or_else(|| wire_error(Reason::InvalidPayload, format!("{what} must be an object")))
}

fn text_field(
    object: &Map<String, Value>,
    name: &str,
    reason: Reason,
) -> Result<String, WireError> {
    object
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| wire_error(reason, format!("{name} is missing or not a string")))
}

/// Parses an amount in atomic units as the wire writes it: decimal digits only.
pub fn parse_atomic(text: &str) -> Result<Usdc, WireError> {
    let bad = || {
        wire_error(
            Reason::InvalidPaymentRequirements,
            format!("{text:?} is not an amount in atomic units"),
        )
    };
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(bad());
    }
    let atomic: u64 = text.parse().map_err(|_| bad())?;
    Usdc::from_atomic(atomic).map_err(|_| bad())
}

/// One way to pay, as either version states it, read into one shape. `raw` is the
/// object as received: a v2 payment echoes it as `accepted`.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    /// The version whose shape it came in.
    pub version: Version,
    /// The payment scheme (`exact`).
    pub scheme: String,
    /// A CAIP-2 id (v2) or a network name (v1).
    pub network: String,
    /// The amount in atomic units (`amount`, or v1's `maxAmountRequired`).
    pub amount: Usdc,
    /// The token's address.
    pub asset: String,
    /// The payee's address.
    pub pay_to: String,
    /// How long a payment for it may take.
    pub max_timeout_seconds: u64,
    /// The token's EIP-712 name and version, from `extra`.
    pub domain: Option<(String, String)>,
    /// The resource URL (v1 carries it in the requirement).
    pub resource: Option<String>,
    /// The object as received.
    pub raw: Value,
}

impl Requirement {
    /// Reads a requirement of the given version.
    pub fn parse(version: Version, raw: &Value) -> Result<Requirement, WireError> {
        let fields = object(raw, "a payment requirement")?;
        let bad = Reason::InvalidPaymentRequirements;
        let amount_field = match version {
            Version::V1 => "maxAmountRequired",
            Version::V2 => "amount",
        };
        let extra = fields.get("extra").and_then(Value::as_object);
        let domain = extra.and_then(|e| {
            let name = e.get("name")?.as_str()?;
            let version = e.get("version")?.as_str()?;
            Some((name.to_owned(), version.to_owned()))
        });
        Ok(Requirement {
            version,
            scheme: text_field(&fields, "scheme", bad)?,
            network: text_field(&fields, "network", bad)?,
            amount: parse_atomic(&text_field(&fields, amount_field, bad)?)?,
            asset: text_field(&fields, "asset", bad)?,
            pay_to: text_field(&fields, "payTo", bad)?,
            max_timeout_seconds: fields
                .get("maxTimeoutSeconds")
                .and_then(Value::as_u64)
                .ok_or_else(|| wire_error(bad, "maxTimeoutSeconds is missing or not a number"))?,
            domain,
            resource: fields
                .get("resource")
                .and_then(Value::as_str)
                .map(str::to_owned),
            raw: raw.clone(),
        })
    }
}

/// A server's answer that payment is required.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRequired {
    /// Its version.
    pub version: Version,
    /// What the server said was wrong, if anything.
    pub error: Option<String>,
    /// v2's `resource` object, echoed in the payment.
    pub resource: Option<Value>,
    /// The ways to pay.
    pub accepts: Vec<Requirement>,
    /// v2 extensions, echoed in the payment.
    pub extensions: Option<Value>,
}

impl PaymentRequired {
    /// Reads a PaymentRequired from its JSON (a v1 body, or a decoded v2 header).
    pub fn from_json(value: &Value) -> Result<PaymentRequired, WireError> {
        let fields = object(value, "PaymentRequired")?;
        let version = Version::read(&fields)?;
        let accepts = fields
            .get("accepts")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                wire_error(Reason::InvalidPaymentRequirements, "accepts must be a list")
            })?
            .iter()
            .map(|raw| Requirement::parse(version, raw))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PaymentRequired {
            version,
            error: fields
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned),
            resource: fields.get("resource").cloned(),
            accepts,
            extensions: fields.get("extensions").cloned(),
        })
    }

    /// Reads the `PAYMENT-REQUIRED` header.
    pub fn from_header(text: &str) -> Result<PaymentRequired, WireError> {
        PaymentRequired::from_json(&decode_header(text)?)
    }
}

/// An EIP-3009 `TransferWithAuthorization`, as the wire writes it (decimal strings,
/// a 0x nonce of 32 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExactAuthorization {
    /// The payer.
    pub from: String,
    /// The payee.
    pub to: String,
    /// Atomic units.
    pub value: String,
    /// Unix seconds after which it is valid.
    pub valid_after: String,
    /// Unix seconds before which it is valid.
    pub valid_before: String,
    /// 0x + 64 hex.
    pub nonce: String,
}

/// The `exact` scheme's EVM payload (EIP-3009 method).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactEvmPayload {
    /// 0x + 130 hex: r, s, v.
    pub signature: String,
    /// What was signed.
    pub authorization: ExactAuthorization,
}

/// A client's payment, in either version.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentPayload {
    /// Its version.
    pub version: Version,
    /// The scheme it pays with.
    pub scheme: String,
    /// The network it pays on.
    pub network: String,
    /// v2: the requirement it answers, verbatim.
    pub accepted: Option<Value>,
    /// The signed authorization.
    pub payload: ExactEvmPayload,
    /// The object as received.
    pub raw: Value,
}

impl PaymentPayload {
    /// Reads a payment from its JSON.
    pub fn from_json(value: &Value) -> Result<PaymentPayload, WireError> {
        let fields = object(value, "PaymentPayload")?;
        let version = Version::read(&fields)?;
        let bad = Reason::InvalidPayload;
        let (scheme, network, accepted) = match version {
            Version::V1 => (
                text_field(&fields, "scheme", bad)?,
                text_field(&fields, "network", bad)?,
                None,
            ),
            Version::V2 => {
                let accepted = fields
                    .get("accepted")
                    .ok_or_else(|| wire_error(bad, "accepted is missing"))?;
                let accepted_fields = object(accepted, "accepted")?;
                (
                    text_field(&accepted_fields, "scheme", bad)?,
                    text_field(&accepted_fields, "network", bad)?,
                    Some(accepted.clone()),
                )
            }
        };
        let payload = fields
            .get("payload")
            .cloned()
            .ok_or_else(|| wire_error(bad, "payload is missing"))
            .and_then(|p| {
                serde_json::from_value::<ExactEvmPayload>(p)
                    .map_err(|e| wire_error(bad, format!("payload: {e}")))
            })?;
        Ok(PaymentPayload {
            version,
            scheme,
            network,
            accepted,
            payload,
            raw: value.clone(),
        })
    }

    /// Reads a `PAYMENT-SIGNATURE` or `X-PAYMENT` header.
    pub fn from_header(text: &str) -> Result<PaymentPayload, WireError> {
        PaymentPayload::from_json(&decode_header(text)?)
    }
}

/// What a resource server asks a facilitator to verify or settle.
#[derive(Debug, Clone, PartialEq)]
pub struct FacilitatorRequest {
    /// The version of the exchange.
    pub version: Version,
    /// The payment.
    pub payment: PaymentPayload,
    /// What the resource server asks for.
    pub requirement: Requirement,
}

impl FacilitatorRequest {
    /// Reads `{x402Version, paymentPayload, paymentRequirements}`.
    pub fn from_json(value: &Value) -> Result<FacilitatorRequest, WireError> {
        let fields = object(value, "the request")?;
        let payment = PaymentPayload::from_json(
            fields
                .get("paymentPayload")
                .ok_or_else(|| wire_error(Reason::InvalidPayload, "paymentPayload is missing"))?,
        )?;
        let version = match fields.get("x402Version") {
            Some(_) => Version::read(&fields)?,
            None => payment.version,
        };
        let requirement = Requirement::parse(
            version,
            fields.get("paymentRequirements").ok_or_else(|| {
                wire_error(
                    Reason::InvalidPaymentRequirements,
                    "paymentRequirements is missing",
                )
            })?,
        )?;
        Ok(FacilitatorRequest {
            version,
            payment,
            requirement,
        })
    }
}

/// A facilitator's answer to `/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the payment would settle.
    pub is_valid: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Why not, for a person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    /// The payer's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

impl VerifyResponse {
    /// A valid payment.
    pub fn valid(payer: String) -> VerifyResponse {
        VerifyResponse {
            is_valid: true,
            invalid_reason: None,
            invalid_message: None,
            payer: Some(payer),
        }
    }

    /// An invalid one.
    pub fn invalid(reason: Reason, message: String, payer: Option<String>) -> VerifyResponse {
        VerifyResponse {
            is_valid: false,
            invalid_reason: Some(reason.as_str().to_owned()),
            invalid_message: Some(message),
            payer,
        }
    }
}

/// A facilitator's answer to `/settle`; also the `PAYMENT-RESPONSE` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Whether the payment settled.
    pub success: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// Why not, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The payer's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// The transaction hash (`""` when nothing was sent).
    #[serde(default)]
    pub transaction: String,
    /// The network it settled on.
    #[serde(default)]
    pub network: String,
    /// The amount settled, in atomic units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
}

/// One kind of payment a facilitator settles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    /// The x402 version.
    pub x402_version: u8,
    /// The scheme.
    pub scheme: String,
    /// The network.
    pub network: String,
    /// What a resource server needs to price in it: Purser states the asset and
    /// its EIP-712 domain (`{asset, name, version}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// A facilitator's answer to `/supported`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportedResponse {
    /// What it settles.
    pub kinds: Vec<SupportedKind>,
    /// The extensions it knows (none).
    pub extensions: Vec<String>,
    /// Its signing addresses by CAIP-2 family.
    pub signers: std::collections::BTreeMap<String, Vec<String>>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn v2_required() -> Value {
        json!({
            "x402Version": 2,
            "resource": {"url": "https://api.example.com/paid"},
            "accepts": [{
                "scheme": "exact", "network": "eip155:31337", "amount": "10000",
                "asset": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "payTo": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
                "maxTimeoutSeconds": 300,
                "extra": {"name": "USD Coin", "version": "2"}
            }]
        })
    }

    #[test]
    fn reads_a_v2_payment_required_from_its_header() {
        let header = encode_header(&v2_required()).unwrap();
        let required = PaymentRequired::from_header(&header).unwrap();
        assert_eq!(required.version, Version::V2);
        let first = &required.accepts[0];
        assert_eq!(first.amount, Usdc::from_atomic(10_000).unwrap());
        assert_eq!(first.domain, Some(("USD Coin".into(), "2".into())));
        assert_eq!(first.raw, v2_required()["accepts"][0]);
    }

    #[test]
    fn reads_a_v1_body() {
        let body = json!({"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [{
            "scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "5",
            "resource": "https://x/y", "description": "", "mimeType": "",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "payTo": "0x90F79bf6EB2c4f870365E785982E1f101E93b906", "maxTimeoutSeconds": 60
        }]});
        let required = PaymentRequired::from_json(&body).unwrap();
        assert_eq!(required.version, Version::V1);
        assert_eq!(required.accepts[0].resource.as_deref(), Some("https://x/y"));
        assert_eq!(required.accepts[0].domain, None);
    }

    #[test]
    fn bad_input_has_a_reason() {
        let reason = |r: Result<PaymentRequired, WireError>| r.unwrap_err().reason;
        assert_eq!(
            reason(PaymentRequired::from_header("%%%")),
            Reason::InvalidPayload
        );
        assert_eq!(
            reason(PaymentRequired::from_header(&STANDARD.encode("{not json"))),
            Reason::InvalidPayload
        );
        assert_eq!(
            reason(PaymentRequired::from_json(
                &json!({"x402Version": 3, "accepts": []})
            )),
            Reason::InvalidX402Version
        );
        let mut negative = v2_required();
        negative["accepts"][0]["amount"] = json!("-1");
        assert_eq!(
            reason(PaymentRequired::from_json(&negative)),
            Reason::InvalidPaymentRequirements
        );
        for amount in ["", "01", "1.5", "1e3", "99999999999999999999"] {
            assert!(parse_atomic(amount).is_err(), "{amount}");
        }
    }

    #[test]
    fn reads_payloads_of_both_versions() {
        let authorization = json!({"from": "0x1", "to": "0x2", "value": "1",
            "validAfter": "0", "validBefore": "9", "nonce": "0x00"});
        let v2 = json!({"x402Version": 2, "accepted": v2_required()["accepts"][0],
            "payload": {"signature": "0xab", "authorization": authorization}});
        let payment = PaymentPayload::from_json(&v2).unwrap();
        assert_eq!(payment.network, "eip155:31337");
        assert!(payment.accepted.is_some());
        let v1 = json!({"x402Version": 1, "scheme": "exact", "network": "base",
            "payload": {"signature": "0xab", "authorization": authorization}});
        assert_eq!(PaymentPayload::from_json(&v1).unwrap().network, "base");
        let missing = json!({"x402Version": 2, "payload": {}});
        assert_eq!(
            PaymentPayload::from_json(&missing).unwrap_err().reason,
            Reason::InvalidPayload
        );
    }

    #[test]
    fn reason_spellings_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            assert!(seen.insert(reason.as_str()));
            assert_eq!(Reason::parse(reason.as_str()), Some(*reason));
        }
    }
}
