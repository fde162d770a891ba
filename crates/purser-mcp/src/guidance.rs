//! What an agent should do about each stable error code: the `instructions` of a
//! tool error. The wording addresses the agent, like the skill does.

use serde_json::{Value, json};

/// Plain instructions for `code`, for an agent.
pub fn instructions(code: &str) -> &'static str {
    match code {
        "approval_required" => {
            "No mandate covers this payment. Show the URL to your human and ask them to approve this one payment; then call the same tool again with the same arguments plus approvalId. Or propose a mandate with create_intent_mandate."
        }
        "no_eligible_mandate" => {
            "No signed mandate covers this payment. Propose one with create_intent_mandate, sized for about 100 calls of this price and naming the exact host, then show its signUrl to your human and wait for the signature."
        }
        "host_not_allowed" => {
            "The payee's host is outside the mandate's allowlist. Propose a new mandate for this host with create_intent_mandate; a mandate is never widened."
        }
        "per_tx_cap_exceeded" | "mandate_budget_exceeded" => {
            "The payment does not fit the mandate's caps. Tell your human; propose a new mandate only if the task really needs it."
        }
        "mandate_expired" | "mandate_revoked" | "mandate_not_signed" | "mandate_not_found" => {
            "This mandate cannot pay. Check get_eligible_mandates for another one; otherwise propose a new mandate and show its signUrl to your human."
        }
        "approval_denied" => "Your human denied this payment. Do not retry it.",
        "approval_expired" | "approval_invalid" => {
            "That approval cannot be used (expired, used, or for another payment). Call again without approvalId to get a new approval URL for your human."
        }
        "insufficient_funds" => {
            "The wallet's balance is too low. Tell your human the wallet needs funding; do not retry until then."
        }
        "amount_overflow" => "The amount is too large. Use a smaller amount.",
        "agent_revoked" => {
            "Your human revoked this agent. Stop making payments and tell your human."
        }
        "policy_denied" => {
            "The wallet's policy forbids this payment. Do not retry it; tell your human if the task needs it."
        }
        "amount_above_max" => {
            "The price is above the maxAmount you gave. Decide whether it is worth it before retrying with a higher maxAmount."
        }
        "unauthenticated" | "token_expired" => {
            "Purser did not accept your credential. Check PURSER_TOKEN / PURSER_AGENT_ID (stdio) or the bearer token (HTTP)."
        }
        "forbidden" => "Agents may not do this; only your human (the wallet's owner) can.",
        "not_found" => "No such object, or not one you may see. Check the id.",
        "idempotency_key_required" | "idempotency_conflict" => {
            "This id was already used with other terms. Use a new id for a new operation."
        }
        "invalid_request"
        | "invalid_amount"
        | "unsupported_currency"
        | "payload_too_large"
        | "method_not_allowed" => {
            "Fix the arguments as the message says and call again. Amounts are USDC decimal strings with at most 6 decimals, e.g. \"0.05\"."
        }
        "invalid_payment_required" | "no_acceptable_requirement" => {
            "The service's payment request is not one Purser can pay (unknown network, asset or scheme). Tell your human which service it was."
        }
        "invalid_signature" => "The signature does not verify. Do not rely on that mandate.",
        "invalid_state" => "The object is not in a state that allows this. Check its status first.",
        "sandbox_disabled" => "This server is not a sandbox; test funds are not available.",
        "chain_not_configured" | "chain_unavailable" | "chain_transfer_failed" => {
            "The on-chain leg is unavailable or failed; no money moved for the failed part. Retry later or tell your human."
        }
        "payment_link_disabled" | "payment_link_expired" | "payment_link_exhausted" => {
            "The link takes no payment now (you were not charged). Ask its merchant for a new one."
        }
        "refund_exceeds_payment" => "Refund at most what is left of the payment.",
        "rate_limited" => "Too many attempts. Wait a few minutes before trying again.",
        "service_unavailable" | "timeout" | "internal_error" | "http_error" => {
            "Purser or the paid service failed. Retry once later; a failed call is not charged."
        }
        _ => "Read the message; do not retry the same call unchanged.",
    }
}

/// The structured error of a tool: code, message, instructions, and the URL (and
/// id) to hand the human when there is one.
pub fn error_body(
    code: &str,
    message: &str,
    url: Option<&str>,
    approval_id: Option<&str>,
) -> Value {
    let mut error = json!({
        "code": code,
        "message": message,
        "instructions": instructions(code),
    });
    if let Some(url) = url {
        error["url"] = json!(url);
    }
    if let Some(id) = approval_id {
        error["approvalId"] = json!(id);
    }
    json!({ "error": error })
}

/// One line for the text content of an error result.
pub fn error_text(code: &str, message: &str, url: Option<&str>) -> String {
    match url {
        Some(url) => format!(
            "{code}: {message}\nAsk your human to open: {url}\n{}",
            instructions(code)
        ),
        None => format!("{code}: {message}\n{}", instructions(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_instructions() {
        let fallback = instructions("something_new");
        for code in purser_types::ErrorCode::ALL {
            assert_ne!(instructions(code.as_str()), fallback, "{code:?}");
        }
        let body = error_body(
            "approval_required",
            "m",
            Some("http://x/approvals/1/review"),
            Some("apr_1"),
        );
        assert_eq!(body["error"]["url"], "http://x/approvals/1/review");
        assert_eq!(body["error"]["approvalId"], "apr_1");
        assert!(error_text("approval_required", "m", Some("http://u")).contains("http://u"));
    }
}
