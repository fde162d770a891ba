//! Intent mandates: validating a draft, and reading a mandate's status and
//! whether it covers a payment.
#![warn(clippy::arithmetic_side_effects)]

use purser_types::{Currency, Denial, Mandate, MandateStatus, MandateTerms, UnixMs, Usdc};

use crate::host::{Host, matches_any, normalize_patterns};

/// The longest description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 1000;
/// The longest category, in characters.
pub const CATEGORY_MAX_CHARS: usize = 64;
/// The most hosts an allowlist may name.
pub const HOSTS_MAX: usize = 100;
/// How far ahead a mandate may end: one year.
pub const VALIDITY_MAX_MS: i64 = 365 * 24 * 3600 * 1000;
/// A mandate's life when the draft names none (as FluxA's CLI: 8 hours).
pub const VALIDITY_DEFAULT_MS: i64 = 8 * 3600 * 1000;

/// What an agent asks for, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MandateDraft {
    /// What the agent will spend on.
    pub description: String,
    /// An optional category.
    pub category: Option<String>,
    /// The total budget.
    pub limit_amount: Usdc,
    /// The largest single payment.
    pub max_amount_per_tx: Option<Usdc>,
    /// Hosts, as typed.
    pub host_allowlist: Vec<String>,
    /// Start (default: now).
    pub valid_from: Option<UnixMs>,
    /// End.
    pub valid_until: Option<UnixMs>,
    /// End as a duration from the start.
    pub valid_for_seconds: Option<u64>,
}

/// Why a draft is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    /// A field is invalid; the message names it.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> DraftError {
    DraftError::Invalid(message.into())
}

fn whole_seconds(at: UnixMs) -> UnixMs {
    UnixMs(at.millis().div_euclid(1000).saturating_mul(1000))
}

/// Validates a draft at `now` into the terms the owner will sign. Times are cut to
/// whole seconds, since the signature covers seconds.
pub fn validate_draft(draft: &MandateDraft, now: UnixMs) -> Result<MandateTerms, DraftError> {
    let description = draft.description.trim();
    let chars = description.chars().count();
    if chars == 0 || chars > DESCRIPTION_MAX_CHARS {
        return Err(invalid(format!(
            "description must be 1-{DESCRIPTION_MAX_CHARS} characters"
        )));
    }
    if description.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid("description must not contain control characters"));
    }
    let category = draft
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if category
        .is_some_and(|c| c.chars().count() > CATEGORY_MAX_CHARS || c.chars().any(char::is_control))
    {
        return Err(invalid(format!(
            "category must be at most {CATEGORY_MAX_CHARS} plain characters"
        )));
    }
    if draft.limit_amount.is_zero() {
        return Err(invalid("limitAmount must be more than 0"));
    }
    if let Some(cap) = draft.max_amount_per_tx
        && (cap.is_zero() || cap > draft.limit_amount)
    {
        return Err(invalid(
            "maxAmountPerTx must be more than 0 and at most limitAmount",
        ));
    }
    if draft.host_allowlist.len() > HOSTS_MAX {
        return Err(invalid(format!(
            "hostAllowlist may name at most {HOSTS_MAX} hosts"
        )));
    }
    let host_allowlist = normalize_patterns(&draft.host_allowlist)
        .map_err(|(host, e)| invalid(format!("hostAllowlist entry {host:?}: {e}")))?;
    let (valid_from, valid_until) = validity(draft, now)?;
    Ok(MandateTerms {
        description: description.to_owned(),
        category: category.map(str::to_owned),
        currency: Currency::Usdc,
        limit_amount: draft.limit_amount,
        max_amount_per_tx: draft.max_amount_per_tx,
        host_allowlist,
        valid_from,
        valid_until,
    })
}

fn validity(draft: &MandateDraft, now: UnixMs) -> Result<(UnixMs, UnixMs), DraftError> {
    let valid_from = whole_seconds(draft.valid_from.unwrap_or(now));
    let valid_until = match (draft.valid_until, draft.valid_for_seconds) {
        (Some(_), Some(_)) => return Err(invalid("give validUntil or validForSeconds, not both")),
        (Some(until), None) => whole_seconds(until),
        (None, Some(seconds)) => {
            let millis = i64::try_from(seconds)
                .ok()
                .and_then(|s| s.checked_mul(1000));
            valid_from.plus_millis(millis.ok_or_else(|| invalid("validForSeconds is too large"))?)
        }
        (None, None) => valid_from.plus_millis(VALIDITY_DEFAULT_MS),
    };
    if valid_until <= valid_from {
        return Err(invalid("validUntil must be after validFrom"));
    }
    if valid_until > now.plus_millis(VALIDITY_MAX_MS) {
        return Err(invalid("validUntil must be at most one year from now"));
    }
    Ok((valid_from, valid_until))
}

/// A mandate's status at `now`: a signed mandate past its window is `expired`, one
/// with nothing left is `exhausted`.
pub fn status_at(mandate: &Mandate, now: UnixMs) -> MandateStatus {
    match mandate.status {
        MandateStatus::Signed if now >= mandate.terms.valid_until => MandateStatus::Expired,
        MandateStatus::Signed if mandate.remaining_amount().is_zero() => MandateStatus::Exhausted,
        other => other,
    }
}

/// Why `mandate` does not cover a payment of `amount` to `host` at `now`, checked in
/// a fixed order: signature, window, host, per-payment cap, budget.
pub fn check_covers(
    mandate: &Mandate,
    amount: Usdc,
    host: Option<&Host>,
    now: UnixMs,
) -> Result<(), Denial> {
    match mandate.status {
        MandateStatus::Signed => {}
        MandateStatus::Revoked => return Err(Denial::MandateRevoked),
        _ => return Err(Denial::MandateNotSigned),
    }
    let terms = &mandate.terms;
    if now < terms.valid_from || now >= terms.valid_until {
        return Err(Denial::MandateExpired);
    }
    if !terms.host_allowlist.is_empty()
        && !host.is_some_and(|h| matches_any(&terms.host_allowlist, h))
    {
        return Err(Denial::HostNotAllowed);
    }
    if terms.max_amount_per_tx.is_some_and(|cap| amount > cap) {
        return Err(Denial::PerTxCapExceeded);
    }
    let committed = mandate.spent_amount.checked_add(mandate.pending_amount);
    let total = committed.and_then(|c| c.checked_add(amount));
    if total.is_none_or(|t| t > terms.limit_amount) {
        return Err(Denial::MandateBudgetExceeded);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use purser_types::{AgentId, Hash32, MandateId, WalletId};

    const NOW: UnixMs = UnixMs(1_800_000_000_000);

    fn usdc(text: &str) -> Usdc {
        text.parse().unwrap()
    }

    fn draft() -> MandateDraft {
        MandateDraft {
            description: "Pay for WHOIS API calls".into(),
            limit_amount: usdc("5"),
            host_allowlist: vec!["api.whois.example".into()],
            valid_for_seconds: Some(3600),
            ..MandateDraft::default()
        }
    }

    fn signed(terms: MandateTerms) -> Mandate {
        Mandate {
            id: MandateId::from_bytes([1; 16]),
            wallet_id: WalletId::from_bytes([2; 16]),
            agent_id: AgentId::from_bytes([3; 16]),
            terms,
            nonce: Hash32([4; 32]),
            status: MandateStatus::Signed,
            spent_amount: Usdc::ZERO,
            pending_amount: Usdc::ZERO,
            signature: None,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    #[test]
    fn drafts_are_validated_and_normalized() {
        let terms = validate_draft(
            &MandateDraft {
                valid_from: Some(UnixMs(NOW.0 + 123)),
                ..draft()
            },
            NOW,
        )
        .unwrap();
        assert_eq!(terms.valid_from, NOW, "cut to whole seconds");
        assert_eq!(terms.valid_until, NOW.plus_millis(3_600_000));
        let defaults = validate_draft(
            &MandateDraft {
                valid_for_seconds: None,
                ..draft()
            },
            NOW,
        )
        .unwrap();
        assert_eq!(defaults.valid_until, NOW.plus_millis(VALIDITY_DEFAULT_MS));
        let bad = [
            MandateDraft {
                description: " ".into(),
                ..draft()
            },
            MandateDraft {
                description: "x".repeat(1001),
                ..draft()
            },
            MandateDraft {
                limit_amount: Usdc::ZERO,
                ..draft()
            },
            MandateDraft {
                max_amount_per_tx: Some(usdc("6")),
                ..draft()
            },
            MandateDraft {
                host_allowlist: vec!["api.com@evil.com".into()],
                ..draft()
            },
            MandateDraft {
                host_allowlist: vec!["*.com".into()],
                ..draft()
            },
            MandateDraft {
                valid_until: Some(NOW.plus_millis(5_000)),
                ..draft()
            },
            MandateDraft {
                valid_for_seconds: Some(366 * 24 * 3600),
                ..draft()
            },
            MandateDraft {
                valid_for_seconds: Some(0),
                ..draft()
            },
            MandateDraft {
                valid_for_seconds: Some(u64::MAX),
                ..draft()
            },
        ];
        for draft in bad {
            assert!(validate_draft(&draft, NOW).is_err(), "{draft:?}");
        }
        assert!(
            validate_draft(
                &MandateDraft {
                    description: "x".repeat(1000),
                    ..draft()
                },
                NOW
            )
            .is_ok()
        );
    }

    #[test]
    fn coverage_checks_in_order() {
        let terms = validate_draft(
            &MandateDraft {
                max_amount_per_tx: Some(usdc("1")),
                ..draft()
            },
            NOW,
        )
        .unwrap();
        let mandate = signed(terms);
        let host = crate::host::normalize_host("api.whois.example").unwrap();
        let other = crate::host::normalize_host("api.other.example").unwrap();
        assert_eq!(check_covers(&mandate, usdc("1"), Some(&host), NOW), Ok(()));
        assert_eq!(
            check_covers(&mandate, usdc("1"), Some(&other), NOW),
            Err(Denial::HostNotAllowed)
        );
        assert_eq!(
            check_covers(&mandate, usdc("1"), None, NOW),
            Err(Denial::HostNotAllowed)
        );
        assert_eq!(
            check_covers(&mandate, usdc("1.5"), Some(&host), NOW),
            Err(Denial::PerTxCapExceeded)
        );
        let late = NOW.plus_millis(3_600_000);
        assert_eq!(
            check_covers(&mandate, usdc("1"), Some(&host), late),
            Err(Denial::MandateExpired)
        );
        assert_eq!(status_at(&mandate, late), MandateStatus::Expired);
        let nearly_spent = Mandate {
            spent_amount: usdc("4.5"),
            ..mandate.clone()
        };
        assert_eq!(
            check_covers(&nearly_spent, usdc("0.5"), Some(&host), NOW),
            Ok(())
        );
        assert_eq!(
            check_covers(&nearly_spent, usdc("0.6"), Some(&host), NOW),
            Err(Denial::MandateBudgetExceeded)
        );
        let spent = Mandate {
            spent_amount: usdc("4.5"),
            pending_amount: usdc("0.5"),
            ..mandate.clone()
        };
        assert_eq!(status_at(&spent, NOW), MandateStatus::Exhausted);
        let revoked = Mandate {
            status: MandateStatus::Revoked,
            ..mandate.clone()
        };
        assert_eq!(
            check_covers(&revoked, usdc("1"), Some(&host), NOW),
            Err(Denial::MandateRevoked)
        );
        let pending = Mandate {
            status: MandateStatus::PendingSignature,
            ..mandate
        };
        assert_eq!(
            check_covers(&pending, usdc("1"), Some(&host), NOW),
            Err(Denial::MandateNotSigned)
        );
    }
}
