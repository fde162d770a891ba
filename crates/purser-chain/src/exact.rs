//! The `exact` scheme on EVM (EIP-3009 method): the checks that need no chain.
//! The facilitator adds the chain's answers (nonce unused, balance, simulation).

use alloy_primitives::{Address, Signature, U256};
use purser_types::x402::{FacilitatorRequest, Reason, SCHEME_EXACT};

use crate::eip3009::{Authorization, parse_signature, recover, token_domain};
use crate::network::Network;

/// A payment that passed every check that needs no chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPayment {
    /// The signed authorization.
    pub authorization: Authorization,
    /// Its signature.
    pub signature: Signature,
}

/// Why a payment is invalid: the reference's reason code, a message, and the payer
/// when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The code.
    pub reason: Reason,
    /// For a person.
    pub message: String,
    /// The payer, once known.
    pub payer: Option<Address>,
}

fn invalid(reason: Reason, message: impl Into<String>, payer: Option<Address>) -> Invalid {
    Invalid {
        reason,
        message: message.into(),
        payer,
    }
}

fn same_address(a: &str, b: Address) -> bool {
    a.parse::<Address>().is_ok_and(|a| a == b)
}

/// Checks a facilitator request against `network` at `now_secs` (Unix seconds):
/// scheme, network, asset, token domain, signature, recipient, time window (valid
/// before at least 6 s from now, valid after not in the future) and exact amount.
pub fn check(
    request: &FacilitatorRequest,
    network: &Network,
    now_secs: u64,
) -> Result<CheckedPayment, Invalid> {
    let (payment, requirement) = (&request.payment, &request.requirement);
    if requirement.scheme != SCHEME_EXACT || payment.scheme != SCHEME_EXACT {
        return Err(invalid(
            Reason::UnsupportedScheme,
            "only the exact scheme is supported",
            None,
        ));
    }
    if payment.version != request.version {
        return Err(invalid(
            Reason::InvalidX402Version,
            "the payment's x402Version differs from the request's",
            None,
        ));
    }
    if !network.is(&requirement.network) {
        return Err(invalid(
            Reason::InvalidNetwork,
            format!("this facilitator settles on {}", network.caip2()),
            None,
        ));
    }
    if payment.network != requirement.network {
        return Err(invalid(
            Reason::NetworkMismatch,
            "the payment is for another network than the requirement",
            None,
        ));
    }
    if !same_address(&requirement.asset, network.usdc) {
        return Err(invalid(
            Reason::InvalidPaymentRequirements,
            format!("the asset is not USDC on {}", network.caip2()),
            None,
        ));
    }
    let Some((name, version)) = &requirement.domain else {
        return Err(invalid(
            Reason::MissingEip712Domain,
            "extra.name and extra.version are required",
            None,
        ));
    };
    if *version != network.token_version {
        return Err(invalid(
            Reason::TokenVersionMismatch,
            format!(
                "USDC on {} signs as version {:?}",
                network.caip2(),
                network.token_version
            ),
            None,
        ));
    }
    if *name != network.token_name {
        return Err(invalid(
            Reason::TokenNameMismatch,
            format!(
                "USDC on {} signs as name {:?} version {:?}",
                network.caip2(),
                network.token_name,
                network.token_version
            ),
            None,
        ));
    }
    let authorization = Authorization::from_wire(&payment.payload.authorization)
        .map_err(|e| invalid(Reason::InvalidPayload, e.to_string(), None))?;
    let payer = Some(authorization.from);
    let signature = parse_signature(&payment.payload.signature)
        .map_err(|e| invalid(Reason::FailedToParseSignature, e.to_string(), payer))?;
    let domain = token_domain(name, version, network.chain_id, network.usdc);
    let signer = recover(&authorization.digest(&domain), &signature)
        .map_err(|e| invalid(Reason::InvalidSignature, e.to_string(), payer))?;
    if signer != authorization.from {
        return Err(invalid(
            Reason::InvalidSignature,
            "the signature is not from the payer",
            payer,
        ));
    }
    if !same_address(&requirement.pay_to, authorization.to) {
        return Err(invalid(
            Reason::RecipientMismatch,
            "authorization.to is not payTo",
            payer,
        ));
    }
    if authorization.valid_before < U256::from(now_secs.saturating_add(6)) {
        return Err(invalid(
            Reason::ValidBefore,
            "the authorization expires in less than 6 seconds",
            payer,
        ));
    }
    if authorization.valid_after > U256::from(now_secs) {
        return Err(invalid(
            Reason::ValidAfter,
            "the authorization is not valid yet",
            payer,
        ));
    }
    if authorization.value != U256::from(requirement.amount.atomic()) {
        return Err(invalid(
            Reason::ValueMismatch,
            format!(
                "the authorization is for {} atomic units; {} are required",
                authorization.value,
                requirement.amount.atomic()
            ),
            payer,
        ));
    }
    Ok(CheckedPayment {
        authorization,
        signature,
    })
}
