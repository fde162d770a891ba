//! The authorization decision: may this agent pay this much to this payee, now,
//! and under what — a mandate, an owner's one-off approval, or the wallet's
//! auto-approve threshold?
//!
//! This is a pure function of the state the committer loaded (and locked) for the
//! batch. The committer applies the decision in the same transaction — the
//! reservation, the mandate's pending amount, the agent's monthly total — so
//! the check and the hold are one atomic step: two concurrent payments can never
//! both fit into budget that only one of them fits. Every payment kind goes
//! through here.

use purser_types::{
    Agent, AgentId, AgentStatus, Approval, ApprovalId, ApprovalStatus, Denial, Mandate, MandateId,
    Payee, PaymentKind, UnixMs, Usdc, WalletId, WalletPolicy,
};

use crate::host::{Host, matches_any, normalize_host};
use crate::mandate::check_covers;

/// One payment an agent asks to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// The agent.
    pub agent: AgentId,
    /// Its wallet.
    pub wallet: WalletId,
    /// How much.
    pub amount: Usdc,
    /// Where to (host normalized, address checksummed).
    pub payee: Payee,
    /// Why, in the agent's words.
    pub purpose: String,
    /// What kind of payment.
    pub kind: PaymentKind,
    /// A mandate the agent names; otherwise the tightest eligible one is used.
    pub mandate: Option<MandateId>,
    /// An approval the owner gave for this payment.
    pub approval: Option<ApprovalId>,
    /// Whether to ask the owner when no mandate covers it (V1), or refuse.
    pub allow_approval: bool,
}

/// The agent's payments in the current calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MonthTotals {
    /// Committed.
    pub spent: Usdc,
    /// Reserved, not yet committed or released.
    pub pending: Usdc,
}

/// Everything the decision reads.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The decision's time.
    pub now: UnixMs,
    /// The agent, if it exists.
    pub agent: Option<&'a Agent>,
    /// The wallet's available balance.
    pub available: Usdc,
    /// The agent's signed mandates, and any mandate the request names.
    pub mandates: Vec<&'a Mandate>,
    /// The wallet's policy.
    pub policy: Option<&'a WalletPolicy>,
    /// The agent's totals this month.
    pub month: MonthTotals,
    /// The approval the request names, if it exists.
    pub approval: Option<&'a Approval>,
}

/// What covers a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cover {
    /// A signed mandate.
    Mandate(MandateId),
    /// The owner's one-off approval.
    Approval(ApprovalId),
    /// The wallet policy's auto-approve threshold.
    AutoApproved,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Hold the funds; the payment may go ahead.
    Reserve(Cover),
    /// Ask the owner: a new approval, or the named one that is still pending.
    RequireApproval(Option<ApprovalId>),
    /// Refuse, for this reason.
    Deny(Denial),
}

/// Decides one payment. The order of checks follows the path: agent,
/// then what covers the payment (mandate: signature, window, host, cap, budget),
/// then the wallet's funds, then the wallet policy, whose denial always wins.
pub fn decide(facts: &Facts<'_>, request: &PaymentRequest) -> Decision {
    match decide_or_deny(facts, request) {
        Ok(decision) => decision,
        Err(denial) => Decision::Deny(denial),
    }
}

fn decide_or_deny(facts: &Facts<'_>, request: &PaymentRequest) -> Result<Decision, Denial> {
    let agent = facts
        .agent
        .filter(|a| a.id == request.agent && a.wallet_id == request.wallet);
    if agent.is_none_or(|a| a.status != AgentStatus::Active) {
        return Err(Denial::AgentRevoked);
    }
    let host = request
        .payee
        .host
        .as_deref()
        .map(normalize_host)
        .transpose()
        .map_err(|_| Denial::HostNotAllowed)?;
    let choice = choose_cover(facts, request, host.as_ref())?;
    if facts.available < request.amount {
        return Err(Denial::InsufficientFunds);
    }
    check_policy(facts, request, host.as_ref())?;
    Ok(match choice {
        Choice::Covered(cover) => Decision::Reserve(cover),
        Choice::AskOwner(existing) => Decision::RequireApproval(existing),
    })
}

/// Either something covers the payment, or the owner must be asked (through a new
/// approval, or the pending one the request names).
enum Choice {
    Covered(Cover),
    AskOwner(Option<ApprovalId>),
}

fn choose_cover(
    facts: &Facts<'_>,
    request: &PaymentRequest,
    host: Option<&Host>,
) -> Result<Choice, Denial> {
    if let Some(id) = request.approval {
        return check_approval(facts, request, id);
    }
    if request.kind == PaymentKind::Refund {
        // Money going back out of a merchant's wallet is the owner's call, each time.
        return Ok(Choice::AskOwner(None));
    }
    let own = |m: &&&Mandate| m.agent_id == request.agent && m.wallet_id == request.wallet;
    if let Some(id) = request.mandate {
        let mandate = facts
            .mandates
            .iter()
            .filter(own)
            .find(|m| m.id == id)
            .ok_or(Denial::MandateNotFound)?;
        check_covers(mandate, request.amount, host, facts.now)?;
        return Ok(Choice::Covered(Cover::Mandate(id)));
    }
    // The tightest fit: the least remaining budget, then the soonest end.
    let candidates: Vec<&Mandate> = facts.mandates.iter().filter(own).copied().collect();
    let tightest = candidates
        .iter()
        .filter(|m| check_covers(m, request.amount, host, facts.now).is_ok())
        .min_by_key(|m| (m.remaining_amount(), m.terms.valid_until, m.id));
    if let Some(mandate) = tightest {
        return Ok(Choice::Covered(Cover::Mandate(mandate.id)));
    }
    let auto = facts
        .policy
        .and_then(|p| p.auto_approve_up_to)
        .is_some_and(|limit| request.amount <= limit);
    match (auto, request.allow_approval, candidates.as_slice()) {
        (true, _, _) => Ok(Choice::Covered(Cover::AutoApproved)),
        (false, true, _) => Ok(Choice::AskOwner(None)),
        // With a single mandate, its own reason says more than "none covers it".
        (false, false, [only]) => Err(check_covers(only, request.amount, host, facts.now)
            .err()
            .unwrap_or(Denial::NoEligibleMandate)),
        (false, false, _) => Err(Denial::NoEligibleMandate),
    }
}

/// An approval covers exactly the payment it was asked for, once, before it expires.
fn check_approval(
    facts: &Facts<'_>,
    request: &PaymentRequest,
    id: ApprovalId,
) -> Result<Choice, Denial> {
    let approval = facts
        .approval
        .filter(|a| a.id == id && a.agent_id == request.agent && a.wallet_id == request.wallet)
        .ok_or(Denial::ApprovalInvalid)?;
    let same_payment = approval.amount == request.amount
        && approval.payee == request.payee
        && approval.kind == request.kind;
    if !same_payment {
        return Err(Denial::ApprovalInvalid);
    }
    match approval.status_at(facts.now) {
        ApprovalStatus::Approved => Ok(Choice::Covered(Cover::Approval(id))),
        ApprovalStatus::Pending => Ok(Choice::AskOwner(Some(id))),
        ApprovalStatus::Denied => Err(Denial::ApprovalDenied),
        ApprovalStatus::Expired => Err(Denial::ApprovalExpired),
        ApprovalStatus::Used => Err(Denial::ApprovalInvalid),
    }
}

/// The wallet policy, checked last so its denial wins over any cover.
fn check_policy(
    facts: &Facts<'_>,
    request: &PaymentRequest,
    host: Option<&Host>,
) -> Result<(), Denial> {
    let Some(policy) = facts.policy else {
        return Ok(());
    };
    if policy
        .per_payment_cap
        .is_some_and(|cap| request.amount > cap)
    {
        return Err(Denial::PolicyDenied);
    }
    if host.is_some_and(|h| matches_any(&policy.denied_hosts, h)) {
        return Err(Denial::PolicyDenied);
    }
    let denied_address = request.payee.address.as_deref().is_some_and(|to| {
        policy
            .denied_addresses
            .iter()
            .any(|d| d.eq_ignore_ascii_case(to))
    });
    if denied_address {
        return Err(Denial::PolicyDenied);
    }
    if let Some(cap) = policy.per_agent_monthly_cap {
        let month = facts
            .month
            .spent
            .checked_add(facts.month.pending)
            .and_then(|m| m.checked_add(request.amount));
        if month.is_none_or(|total| total > cap) {
            return Err(Denial::PolicyDenied);
        }
    }
    Ok(())
}

/// The calendar month (UTC) of `at`, as `YYYY-MM`: the bucket of monthly caps.
pub fn month_of(at: UnixMs) -> String {
    let days = at.millis().div_euclid(86_400_000);
    let (year, month) = civil_from_days(days);
    format!("{year:04}-{month:02}")
}

/// Year and month of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, u32::try_from(month).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use purser_types::{Hash32, MandateStatus};

    use crate::mandate::{MandateDraft, validate_draft};

    const NOW: UnixMs = UnixMs(1_800_000_000_000);

    fn usdc(text: &str) -> Usdc {
        text.parse().unwrap()
    }

    fn agent() -> Agent {
        Agent {
            id: AgentId::from_bytes([1; 16]),
            wallet_id: WalletId::from_bytes([2; 16]),
            name: "a".into(),
            status: AgentStatus::Active,
            created_at: NOW,
            revoked_at: None,
        }
    }

    fn mandate(n: u8, limit: &str, hosts: &[&str]) -> Mandate {
        let draft = MandateDraft {
            description: "calls".into(),
            limit_amount: usdc(limit),
            host_allowlist: hosts.iter().map(|h| (*h).to_owned()).collect(),
            valid_for_seconds: Some(3600),
            ..MandateDraft::default()
        };
        Mandate {
            id: MandateId::from_bytes([n; 16]),
            wallet_id: WalletId::from_bytes([2; 16]),
            agent_id: AgentId::from_bytes([1; 16]),
            terms: validate_draft(&draft, NOW).unwrap(),
            nonce: Hash32([n; 32]),
            status: MandateStatus::Signed,
            spent_amount: Usdc::ZERO,
            pending_amount: Usdc::ZERO,
            signature: None,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    fn request(amount: &str, host: &str) -> PaymentRequest {
        PaymentRequest {
            agent: AgentId::from_bytes([1; 16]),
            wallet: WalletId::from_bytes([2; 16]),
            amount: usdc(amount),
            payee: Payee {
                host: Some(host.into()),
                address: None,
            },
            purpose: "test".into(),
            kind: PaymentKind::X402,
            mandate: None,
            approval: None,
            allow_approval: true,
        }
    }

    fn facts<'a>(
        agent: &'a Agent,
        mandates: &'a [Mandate],
        policy: Option<&'a WalletPolicy>,
    ) -> Facts<'a> {
        Facts {
            now: NOW,
            agent: Some(agent),
            available: usdc("100"),
            mandates: mandates.iter().collect(),
            policy,
            month: MonthTotals::default(),
            approval: None,
        }
    }

    #[test]
    fn picks_the_tightest_eligible_mandate() {
        let agent = agent();
        let mandates = [
            mandate(1, "10", &[]),
            mandate(2, "2", &["api.com"]),
            mandate(3, "1", &["other.com"]),
        ];
        let facts = facts(&agent, &mandates, None);
        let decision = decide(&facts, &request("0.5", "api.com"));
        assert_eq!(
            decision,
            Decision::Reserve(Cover::Mandate(MandateId::from_bytes([2; 16])))
        );
        let decision = decide(&facts, &request("5", "api.com"));
        assert_eq!(
            decision,
            Decision::Reserve(Cover::Mandate(MandateId::from_bytes([1; 16])))
        );
    }

    #[test]
    fn falls_back_to_approval_auto_approval_or_denial() {
        let agent = agent();
        let mandates = [mandate(2, "1", &["api.com"])];
        let facts_none = facts(&agent, &mandates, None);
        assert_eq!(
            decide(&facts_none, &request("0.5", "evil.com")),
            Decision::RequireApproval(None)
        );
        let strict = PaymentRequest {
            allow_approval: false,
            ..request("0.5", "evil.com")
        };
        assert_eq!(
            decide(&facts_none, &strict),
            Decision::Deny(Denial::HostNotAllowed),
            "the only mandate's own reason"
        );
        let two = [
            mandate(2, "1", &["api.com"]),
            mandate(3, "1", &["other.com"]),
        ];
        let facts_two = facts(&agent, &two, None);
        assert_eq!(
            decide(&facts_two, &strict),
            Decision::Deny(Denial::NoEligibleMandate)
        );
        let named = PaymentRequest {
            mandate: Some(MandateId::from_bytes([2; 16])),
            ..request("0.5", "evil.com")
        };
        assert_eq!(
            decide(&facts_none, &named),
            Decision::Deny(Denial::HostNotAllowed)
        );
        let unknown = PaymentRequest {
            mandate: Some(MandateId::from_bytes([9; 16])),
            ..request("0.5", "api.com")
        };
        assert_eq!(
            decide(&facts_none, &unknown),
            Decision::Deny(Denial::MandateNotFound)
        );
        let policy = WalletPolicy {
            auto_approve_up_to: Some(usdc("0.1")),
            ..WalletPolicy::default()
        };
        let facts_auto = facts(&agent, &mandates, Some(&policy));
        assert_eq!(
            decide(&facts_auto, &request("0.1", "evil.com")),
            Decision::Reserve(Cover::AutoApproved)
        );
        assert_eq!(
            decide(&facts_auto, &request("0.2", "evil.com")),
            Decision::RequireApproval(None)
        );
    }

    #[test]
    fn a_refund_always_asks_the_owner() {
        let agent = agent();
        let mandates = [mandate(1, "50", &[])];
        let policy = WalletPolicy {
            auto_approve_up_to: Some(usdc("10")),
            ..WalletPolicy::default()
        };
        let facts = facts(&agent, &mandates, Some(&policy));
        let refund = PaymentRequest {
            kind: PaymentKind::Refund,
            mandate: Some(MandateId::from_bytes([1; 16])),
            ..request("0.5", "api.com")
        };
        assert_eq!(
            decide(&facts, &refund),
            Decision::RequireApproval(None),
            "neither a mandate nor auto-approval covers a refund"
        );
    }

    #[test]
    fn policy_denial_wins_and_funds_are_checked() {
        let agent = agent();
        let mandates = [mandate(1, "50", &[])];
        let deny_host = WalletPolicy {
            denied_hosts: vec!["*.evil.com".into()],
            ..WalletPolicy::default()
        };
        let facts_policy = facts(&agent, &mandates, Some(&deny_host));
        assert_eq!(
            decide(&facts_policy, &request("1", "x.evil.com")),
            Decision::Deny(Denial::PolicyDenied)
        );
        assert!(matches!(
            decide(&facts_policy, &request("1", "evil.com")),
            Decision::Reserve(_)
        ));
        let capped = WalletPolicy {
            per_agent_monthly_cap: Some(usdc("10")),
            ..WalletPolicy::default()
        };
        let mut facts_cap = facts(&agent, &mandates, Some(&capped));
        facts_cap.month = MonthTotals {
            spent: usdc("6"),
            pending: usdc("3"),
        };
        assert!(matches!(
            decide(&facts_cap, &request("1", "a.com")),
            Decision::Reserve(_)
        ));
        assert_eq!(
            decide(&facts_cap, &request("1.01", "a.com")),
            Decision::Deny(Denial::PolicyDenied)
        );
        let mut poor = facts(&agent, &mandates, None);
        poor.available = usdc("0.5");
        assert_eq!(
            decide(&poor, &request("1", "a.com")),
            Decision::Deny(Denial::InsufficientFunds)
        );
        let revoked = Agent {
            status: AgentStatus::Revoked,
            ..agent.clone()
        };
        let facts_revoked = facts(&revoked, &mandates, None);
        assert_eq!(
            decide(&facts_revoked, &request("1", "a.com")),
            Decision::Deny(Denial::AgentRevoked)
        );
    }

    #[test]
    fn approvals_cover_exactly_their_payment_once() {
        let agent = agent();
        let approval = Approval {
            id: ApprovalId::from_bytes([7; 16]),
            wallet_id: WalletId::from_bytes([2; 16]),
            agent_id: AgentId::from_bytes([1; 16]),
            amount: usdc("3"),
            payee: Payee {
                host: Some("a.com".into()),
                address: None,
            },
            purpose: "x".into(),
            kind: PaymentKind::X402,
            status: ApprovalStatus::Pending,
            created_at: NOW,
            expires_at: NOW.plus_millis(600_000),
            decided_at: None,
        };
        let with = |approval: &Approval| {
            let mut f = facts(&agent, &[], None);
            f.approval = Some(approval);
            let request = PaymentRequest {
                approval: Some(approval.id),
                ..request("3", "a.com")
            };
            decide(&f, &request)
        };
        assert_eq!(
            with(&approval),
            Decision::RequireApproval(Some(approval.id))
        );
        let approved = Approval {
            status: ApprovalStatus::Approved,
            ..approval.clone()
        };
        assert_eq!(
            with(&approved),
            Decision::Reserve(Cover::Approval(approval.id))
        );
        let used = Approval {
            status: ApprovalStatus::Used,
            ..approval.clone()
        };
        assert_eq!(with(&used), Decision::Deny(Denial::ApprovalInvalid));
        let denied = Approval {
            status: ApprovalStatus::Denied,
            ..approval.clone()
        };
        assert_eq!(with(&denied), Decision::Deny(Denial::ApprovalDenied));
        let late = Approval {
            status: ApprovalStatus::Approved,
            expires_at: NOW,
            ..approval.clone()
        };
        assert_eq!(with(&late), Decision::Deny(Denial::ApprovalExpired));
        let other_amount = Approval {
            status: ApprovalStatus::Approved,
            amount: usdc("2"),
            ..approval
        };
        assert_eq!(with(&other_amount), Decision::Deny(Denial::ApprovalInvalid));
    }

    #[test]
    fn months_are_utc_calendar_months() {
        assert_eq!(month_of(UnixMs(0)), "1970-01");
        assert_eq!(month_of(UnixMs(1_798_761_599_999)), "2026-12");
        assert_eq!(month_of(UnixMs(1_798_761_600_000)), "2027-01");
        assert_eq!(month_of(UnixMs(951_782_400_000)), "2000-02");
        assert_eq!(month_of(UnixMs(951_868_800_000)), "2000-03");
    }
}
