//! Tests of the batch state machine: pure, no database.
#![allow(clippy::arithmetic_side_effects)]

use proptest::prelude::*;
use purser_types::{
    AccountKind, Agent, AgentStatus, Approval, ApprovalStatus, Currency, Denial, Mandate,
    MandateStatus, Payee, PaymentKind, Reservation, ReservationStatus, TransferId, TransferKind,
    Usdc, Wallet,
};

use super::*;
use crate::authorize::PaymentRequest;
use crate::change::{Authorization, Authorize, NewTransfer};
use crate::mandate::{MandateDraft, validate_draft};

fn wallet_id(n: u8) -> WalletId {
    WalletId::from_bytes([n; 16])
}

fn onramp() -> AccountId {
    AccountId::system(AccountKind::SandboxOnramp, Currency::Usdc)
}

fn request(change: Change, key: Option<(&str, u8)>) -> WriteRequest {
    WriteRequest {
        at: UnixMs(1_000),
        actor: Actor::System,
        idempotency: key.map(|(k, f)| Idempotency {
            scope: "s".into(),
            key: k.into(),
            fingerprint: Hash32([f; 32]),
        }),
        change,
    }
}

fn create(n: u8) -> Change {
    Change::CreateWallet {
        wallet: Wallet {
            id: wallet_id(n),
            name: "w".into(),
            currency: Currency::Usdc,
            address: format!("0x{n}"),
            created_at: UnixMs(0),
        },
        owner_token_hash: Hash32([n; 32]),
        sealed_key: "k".into(),
        password_hash: None,
    }
}

fn pay(id: u8, from: AccountId, to: AccountId, atomic: u64) -> Change {
    Change::Transfer(NewTransfer {
        id: TransferId::from_bytes([id; 16]),
        from,
        to,
        amount: Usdc::from_atomic(atomic).unwrap(),
        kind: TransferKind::Adjustment,
        memo: None,
    })
}

fn snapshot_with_onramp() -> Snapshot {
    let mut snapshot = Snapshot::default();
    snapshot.ledger.insert(onramp(), -50);
    snapshot
}

#[test]
fn a_wallet_created_in_the_batch_can_be_funded_in_the_same_batch() {
    let mut batch = Batch::new(snapshot_with_onramp());
    let to = AccountId::available(wallet_id(1), Currency::Usdc);
    assert_eq!(
        batch.apply(&request(pay(1, onramp(), to, 5), None)),
        Err(LedgerError::UnknownAccount(to).into())
    );
    batch.apply(&request(create(1), None)).unwrap();
    batch
        .apply(&request(pay(2, onramp(), to, 5), None))
        .unwrap();
    let effects = batch.finish();
    assert_eq!(effects.wallets.len(), 1);
    assert_eq!(effects.accounts.len(), 2);
    assert_eq!(
        effects.transfers.len(),
        1,
        "the refused transfer left nothing"
    );
    assert_eq!(effects.audit.len(), 2);
    let mut balances = effects.balances.clone();
    balances.sort_by_key(|b| b.account);
    assert_eq!(
        balances,
        vec![
            BalanceUpdate {
                account: to,
                before: 0,
                after: 5
            },
            BalanceUpdate {
                account: onramp(),
                before: -50,
                after: -55
            },
        ]
    );
}

#[test]
fn keys_replay_within_and_across_batches_and_conflicts_are_refused() {
    let mut batch = Batch::new(Snapshot::default());
    let first = batch.apply(&request(create(1), Some(("k", 1)))).unwrap();
    let again = batch.apply(&request(create(1), Some(("k", 1)))).unwrap();
    assert!(again.replayed && !first.replayed);
    assert_eq!(again.outcome, first.outcome);
    assert_eq!(
        batch.apply(&request(create(2), Some(("k", 2)))),
        Err(Refusal::IdempotencyConflict)
    );
    let effects = batch.finish();
    assert_eq!(
        (
            effects.keys.len(),
            effects.wallets.len(),
            effects.audit.len()
        ),
        (1, 1, 1)
    );

    let mut snapshot = Snapshot::default();
    snapshot.keys.insert(
        ("s".into(), "k".into()),
        StoredKey {
            fingerprint: Hash32([1; 32]),
            outcome: first.outcome,
        },
    );
    let mut later = Batch::new(snapshot);
    assert!(
        later
            .apply(&request(create(1), Some(("k", 1))))
            .unwrap()
            .replayed
    );
    assert!(later.finish().is_empty());
}

#[test]
fn agents_are_registered_on_existing_wallets_and_revoked_once() {
    let agent = Agent {
        id: AgentId::from_bytes([9; 16]),
        wallet_id: wallet_id(1),
        name: "a".into(),
        status: AgentStatus::Active,
        created_at: UnixMs(0),
        revoked_at: None,
    };
    let register = Change::RegisterAgent {
        agent: agent.clone(),
        credential_hash: Hash32([3; 32]),
    };
    let mut batch = Batch::new(Snapshot::default());
    assert_eq!(
        batch.apply(&request(register.clone(), None)),
        Err(Refusal::NotFound)
    );
    batch.apply(&request(create(1), None)).unwrap();
    batch.apply(&request(register.clone(), None)).unwrap();
    assert_eq!(
        batch.apply(&request(register, None)),
        Err(Refusal::AlreadyExists)
    );
    let foreign = Change::RevokeAgent {
        wallet: wallet_id(2),
        agent: agent.id,
    };
    assert_eq!(batch.apply(&request(foreign, None)), Err(Refusal::NotFound));
    let revoke = Change::RevokeAgent {
        wallet: wallet_id(1),
        agent: agent.id,
    };
    batch.apply(&request(revoke.clone(), None)).unwrap();
    batch.apply(&request(revoke, None)).unwrap();
    let effects = batch.finish();
    assert_eq!(effects.revocations, vec![(agent.id, UnixMs(1_000))]);
    let actions: Vec<_> = effects
        .audit
        .iter()
        .map(|(_, e)| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        ["wallet.created", "agent.registered", "agent.revoked"]
    );
}

proptest! {
    /// Any batch conserves money: the balance updates of a currency net to zero,
    /// and they equal the transfers the batch recorded.
    #[test]
    fn batches_conserve_money(steps in prop::collection::vec((0usize..4, 0usize..4, 0u64..40), 0..80)) {
        let mut snapshot = snapshot_with_onramp();
        let accounts: Vec<AccountId> = std::iter::once(onramp())
            .chain((1..=3).map(|n| AccountId::available(wallet_id(n), Currency::Usdc)))
            .collect();
        for account in &accounts[1..] {
            snapshot.ledger.insert(*account, 10);
        }
        snapshot.ledger.insert(onramp(), -30);
        let mut batch = Batch::new(snapshot);
        for (i, (from, to, amount)) in steps.into_iter().enumerate() {
            let id = u8::try_from(i % 250).unwrap();
            let _ = batch.apply(&request(pay(id, accounts[from], accounts[to], amount), None));
        }
        let effects = batch.finish();
        let net: i64 = effects.balances.iter().map(|b| b.after - b.before).sum();
        prop_assert_eq!(net, 0);
        for update in &effects.balances {
            let moved_in: i64 = effects.transfers.iter().filter(|t| t.to == update.account).map(|t| t.amount.atomic_i64()).sum();
            let moved_out: i64 = effects.transfers.iter().filter(|t| t.from == update.account).map(|t| t.amount.atomic_i64()).sum();
            prop_assert_eq!(update.after - update.before, moved_in - moved_out);
            if update.account != onramp() {
                prop_assert!(update.after >= 0);
            }
        }
        prop_assert_eq!(effects.audit.len(), effects.transfers.len());
    }
}

// ---- mandates and the authorization path ----

const T0: UnixMs = UnixMs(1_800_000_000_000);

fn usdc(text: &str) -> Usdc {
    text.parse().unwrap()
}

fn wallet() -> WalletId {
    wallet_id(1)
}

fn agent_id() -> AgentId {
    AgentId::from_bytes([2; 16])
}

fn merchant() -> AccountId {
    AccountId::available(wallet_id(9), Currency::Usdc)
}

/// A wallet with `funds` available, its active agent, and a merchant wallet.
fn funded_snapshot(funds: &str) -> Snapshot {
    let mut snapshot = Snapshot::default();
    snapshot.ledger.insert(
        AccountId::available(wallet(), Currency::Usdc),
        usdc(funds).atomic_i64(),
    );
    snapshot
        .ledger
        .insert(AccountId::reserved(wallet(), Currency::Usdc), 0);
    snapshot.ledger.insert(merchant(), 0);
    snapshot.wallets.insert(wallet());
    let agent = Agent {
        id: agent_id(),
        wallet_id: wallet(),
        name: "agent".into(),
        status: AgentStatus::Active,
        created_at: T0,
        revoked_at: None,
    };
    snapshot.agents.insert(agent.id, agent);
    snapshot
}

fn at(change: Change, time: UnixMs) -> WriteRequest {
    WriteRequest {
        at: time,
        actor: Actor::Agent(agent_id()),
        idempotency: None,
        change,
    }
}

fn mandate(n: u8, limit: &str, cap: Option<&str>) -> Mandate {
    let draft = MandateDraft {
        description: "research".into(),
        limit_amount: usdc(limit),
        max_amount_per_tx: cap.map(usdc),
        host_allowlist: vec!["api.com".into()],
        valid_for_seconds: Some(3600),
        ..MandateDraft::default()
    };
    Mandate {
        id: MandateId::from_bytes([n; 16]),
        wallet_id: wallet(),
        agent_id: agent_id(),
        terms: validate_draft(&draft, T0).unwrap(),
        nonce: Hash32([n; 32]),
        status: MandateStatus::PendingSignature,
        spent_amount: Usdc::ZERO,
        pending_amount: Usdc::ZERO,
        signature: None,
        created_at: T0,
        updated_at: T0,
    }
}

fn sign(n: u8) -> Change {
    let signature = purser_types::MandateSignature {
        mandate_hash: "0x00".into(),
        signature: "0x00".into(),
        signer: "0x00".into(),
        signed_at: T0,
    };
    Change::SignMandate {
        wallet: wallet(),
        mandate: MandateId::from_bytes([n; 16]),
        signature,
    }
}

fn authorize(n: u16, amount: Usdc, mandate: Option<u8>) -> Change {
    let mut seed = [0u8; 16];
    seed[..2].copy_from_slice(&n.to_be_bytes());
    seed[15] = 1;
    Change::Authorize(Authorize {
        request: PaymentRequest {
            agent: agent_id(),
            wallet: wallet(),
            amount,
            payee: Payee {
                host: Some("api.com".into()),
                address: None,
            },
            purpose: "a call".into(),
            kind: PaymentKind::X402,
            mandate: mandate.map(|m| MandateId::from_bytes([m; 16])),
            approval: None,
            allow_approval: false,
        },
        reservation: ReservationId::from_bytes(seed),
        approval: ApprovalId::from_bytes(seed),
        approval_expires_at: T0.plus_millis(600_000),
    })
}

fn reserved(outcome: Outcome) -> Reservation {
    match outcome {
        Outcome::Authorization(Authorization::Reserved { reservation }) => reservation,
        other => panic!("expected a reservation, got {other:?}"),
    }
}

#[test]
fn the_authorization_path_reserves_commits_and_releases() {
    let mut batch = Batch::new(funded_snapshot("10"));
    batch
        .apply(&at(Change::DraftMandate(mandate(1, "1", None)), T0))
        .unwrap();
    let unsigned = batch
        .apply(&at(authorize(1, usdc("0.4"), Some(1)), T0))
        .unwrap()
        .outcome;
    assert_eq!(
        unsigned,
        Outcome::Authorization(Authorization::Denied {
            reason: Denial::MandateNotSigned
        })
    );
    batch.apply(&at(sign(1), T0)).unwrap();
    let first = reserved(
        batch
            .apply(&at(authorize(2, usdc("0.4"), None), T0))
            .unwrap()
            .outcome,
    );
    let second = reserved(
        batch
            .apply(&at(authorize(3, usdc("0.4"), None), T0))
            .unwrap()
            .outcome,
    );
    let over = batch
        .apply(&at(authorize(4, usdc("0.4"), Some(1)), T0))
        .unwrap()
        .outcome;
    assert_eq!(
        over,
        Outcome::Authorization(Authorization::Denied {
            reason: Denial::MandateBudgetExceeded
        })
    );
    assert_eq!(
        batch
            .mandates
            .get(&MandateId::from_bytes([1; 16]))
            .unwrap()
            .pending_amount,
        usdc("0.8")
    );

    let release = Change::Release {
        wallet: wallet(),
        reservation: first.id,
        reason: "payment failed".into(),
    };
    batch.apply(&at(release.clone(), T0)).unwrap();
    assert_eq!(
        batch.apply(&at(release, T0)),
        Err(Refusal::InvalidState(
            "the reservation was already committed or released"
        ))
    );
    let commit = Change::Commit {
        wallet: wallet(),
        reservation: second.id,
        destination: merchant(),
        settlement: None,
        enforce: true,
    };
    let committed = batch.apply(&at(commit, T0)).unwrap().outcome;
    assert!(
        matches!(committed, Outcome::Reservation(r) if r.status == ReservationStatus::Committed)
    );
    let m = batch.mandates.get(&MandateId::from_bytes([1; 16])).unwrap();
    assert_eq!(
        (m.spent_amount, m.pending_amount, m.remaining_amount()),
        (usdc("0.4"), Usdc::ZERO, usdc("0.6"))
    );
    assert_eq!(
        batch.ledger.balance(merchant()),
        Some(usdc("0.4").atomic_i64())
    );
    assert_eq!(batch.available(wallet()), usdc("9.6"));

    let effects = batch.finish();
    let actions: Vec<&str> = effects
        .audit
        .iter()
        .map(|(_, e)| e.action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "mandate.drafted",
            "payment.denied",
            "mandate.signed",
            "ledger.reserve",
            "payment.authorized",
            "ledger.reserve",
            "payment.authorized",
            "payment.denied",
            "ledger.release",
            "payment.released",
            "ledger.payment",
            "payment.committed",
        ]
    );
}

#[test]
fn revocation_between_reserve_and_commit_releases_the_hold() {
    for revoke in [
        Change::RevokeMandate {
            wallet: wallet(),
            mandate: MandateId::from_bytes([1; 16]),
        },
        Change::RevokeAgent {
            wallet: wallet(),
            agent: agent_id(),
        },
    ] {
        let mut batch = Batch::new(funded_snapshot("10"));
        batch
            .apply(&at(Change::DraftMandate(mandate(1, "1", None)), T0))
            .unwrap();
        batch.apply(&at(sign(1), T0)).unwrap();
        let hold = reserved(
            batch
                .apply(&at(authorize(1, usdc("0.5"), None), T0))
                .unwrap()
                .outcome,
        );
        batch.apply(&at(revoke.clone(), T0)).unwrap();
        let commit = Change::Commit {
            wallet: wallet(),
            reservation: hold.id,
            destination: merchant(),
            settlement: None,
            enforce: true,
        };
        let Outcome::Reservation(after) = batch.apply(&at(commit, T0)).unwrap().outcome else {
            panic!()
        };
        assert_eq!(after.status, ReservationStatus::Released, "{revoke:?}");
        assert!(after.release_reason.unwrap().ends_with("_revoked"));
        assert_eq!(batch.available(wallet()), usdc("10"));
        assert_eq!(batch.ledger.balance(merchant()), Some(0));
        let m = batch.mandates.get(&MandateId::from_bytes([1; 16])).unwrap();
        assert_eq!((m.spent_amount, m.pending_amount), (Usdc::ZERO, Usdc::ZERO));
        let again = batch
            .apply(&at(authorize(2, usdc("0.1"), Some(1)), T0))
            .unwrap()
            .outcome;
        assert!(matches!(
            again,
            Outcome::Authorization(Authorization::Denied { .. })
        ));
    }
}

#[test]
fn a_refused_compound_change_leaves_no_trace() {
    let mut snapshot = funded_snapshot("10");
    // A payee whose balance cannot take any more: the payment step fails after the hold.
    snapshot.ledger.insert(merchant(), i64::MAX);
    let mut batch = Batch::new(snapshot);
    batch
        .apply(&at(Change::DraftMandate(mandate(1, "1", None)), T0))
        .unwrap();
    batch.apply(&at(sign(1), T0)).unwrap();
    let before_audit = batch.effects.audit.len();
    let Change::Authorize(authorize) = authorize(1, usdc("0.5"), Some(1)) else {
        unreachable!()
    };
    let payout = Payout {
        id: "po-1".parse().unwrap(),
        wallet_id: wallet(),
        agent_id: agent_id(),
        to_address: "0x0000000000000000000000000000000000000009".into(),
        amount: usdc("0.5"),
        mandate_id: Some(MandateId::from_bytes([1; 16])),
        rail: purser_types::Rail::Ledger,
        status: purser_types::PayoutStatus::PendingAuthorization,
        reservation_id: None,
        approval_id: None,
        settlement: None,
        failure_reason: None,
        created_at: T0,
        updated_at: T0,
    };
    let change = Change::RequestPayout {
        payout,
        authorize,
        destination: Some(merchant()),
    };
    assert!(matches!(
        batch.apply(&at(change, T0)),
        Err(Refusal::Ledger(LedgerError::BalanceOverflow(_)))
    ));
    assert_eq!(batch.effects.audit.len(), before_audit);
    assert_eq!(batch.available(wallet()), usdc("10"));
    assert_eq!(
        batch
            .ledger
            .balance(AccountId::reserved(wallet(), Currency::Usdc)),
        Some(0)
    );
    assert_eq!(
        batch
            .mandates
            .get(&MandateId::from_bytes([1; 16]))
            .unwrap()
            .pending_amount,
        Usdc::ZERO
    );
    assert!(
        batch
            .payouts
            .get(&(wallet(), "po-1".parse().unwrap()))
            .is_none()
    );
    let effects = batch.finish();
    assert!(
        effects.reservations.is_empty()
            && effects.payouts.is_empty()
            && effects.transfers.is_empty()
    );
}

#[test]
fn approvals_are_asked_decided_and_used_once() {
    let mut batch = Batch::new(funded_snapshot("10"));
    let Change::Authorize(mut ask) = authorize(1, usdc("2"), None) else {
        unreachable!()
    };
    ask.request.allow_approval = true;
    let asked = batch
        .apply(&at(Change::Authorize(ask.clone()), T0))
        .unwrap()
        .outcome;
    let Outcome::Authorization(Authorization::ApprovalRequired { approval }) = asked else {
        panic!("{asked:?}")
    };
    assert_eq!(approval.status, ApprovalStatus::Pending);
    let mut retry = ask.clone();
    retry.request.approval = Some(approval.id);
    retry.reservation = ReservationId::from_bytes([7; 16]);
    let waiting = batch
        .apply(&at(Change::Authorize(retry.clone()), T0))
        .unwrap()
        .outcome;
    assert!(matches!(
        waiting,
        Outcome::Authorization(Authorization::ApprovalRequired { .. })
    ));
    let decide = Change::DecideApproval {
        wallet: wallet(),
        approval: approval.id,
        approve: true,
    };
    batch.apply(&at(decide.clone(), T0)).unwrap();
    assert_eq!(
        batch.apply(&at(decide, T0)),
        Err(Refusal::InvalidState("the approval was already decided"))
    );
    reserved(
        batch
            .apply(&at(Change::Authorize(retry.clone()), T0))
            .unwrap()
            .outcome,
    );
    let mut again = retry;
    again.reservation = ReservationId::from_bytes([8; 16]);
    let reused = batch
        .apply(&at(Change::Authorize(again), T0))
        .unwrap()
        .outcome;
    assert_eq!(
        reused,
        Outcome::Authorization(Authorization::Denied {
            reason: Denial::ApprovalInvalid
        })
    );
    let late = Approval {
        expires_at: T0,
        ..approval
    };
    assert_eq!(late.status_at(T0), ApprovalStatus::Expired);
}

/// One step of the property test below.
#[derive(Debug, Clone)]
enum Op {
    Draft {
        limit_cents: u64,
        cap_cents: Option<u64>,
    },
    Sign(usize),
    Revoke(usize),
    Authorize {
        cents: u64,
        mandate: Option<usize>,
    },
    Commit {
        nth: usize,
        enforce: bool,
    },
    Release(usize),
    Advance {
        seconds: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u64..500, proptest::option::of(1u64..200)).prop_map(|(limit_cents, cap_cents)| {
            Op::Draft {
                limit_cents,
                cap_cents,
            }
        }),
        (0usize..4).prop_map(Op::Sign),
        (0usize..4).prop_map(Op::Revoke),
        (1u64..150, proptest::option::of(0usize..4))
            .prop_map(|(cents, mandate)| Op::Authorize { cents, mandate }),
        (0usize..8, any::<bool>()).prop_map(|(nth, enforce)| Op::Commit { nth, enforce }),
        (0usize..8).prop_map(Op::Release),
        (0i64..2000).prop_map(|seconds| Op::Advance { seconds }),
    ]
}

fn cents(n: u64) -> Usdc {
    Usdc::from_atomic(n * 10_000).unwrap()
}

/// After any sequence of operations, no mandate is over budget, `spent + pending +
/// remaining = limit` holds for each, its pending and spent amounts equal its held
/// and committed reservations, and the wallet's reserved balance equals all holds.
fn assert_consistent(batch: &Batch) -> Result<(), TestCaseError> {
    let reservations: Vec<&Reservation> = batch.reservations.values().collect();
    for m in batch.mandates.values() {
        let total = m.spent_amount.checked_add(m.pending_amount).unwrap();
        prop_assert!(total <= m.terms.limit_amount, "over budget: {m:?}");
        prop_assert_eq!(
            total.checked_add(m.remaining_amount()).unwrap(),
            m.terms.limit_amount
        );
        let sum = |status: ReservationStatus| {
            reservations
                .iter()
                .filter(|r| r.mandate_id == Some(m.id) && r.status == status)
                .fold(Usdc::ZERO, |acc, r| acc.checked_add(r.amount).unwrap())
        };
        prop_assert_eq!(m.pending_amount, sum(ReservationStatus::Held));
        prop_assert_eq!(m.spent_amount, sum(ReservationStatus::Committed));
    }
    let held: i64 = reservations
        .iter()
        .filter(|r| r.status == ReservationStatus::Held)
        .map(|r| r.amount.atomic_i64())
        .sum();
    prop_assert_eq!(
        batch
            .ledger
            .balance(AccountId::reserved(wallet(), Currency::Usdc)),
        Some(held)
    );
    Ok(())
}

proptest! {
    #[test]
    fn mandate_budgets_hold_under_any_sequence(ops in prop::collection::vec(op(), 1..60)) {
        let mut batch = Batch::new(funded_snapshot("100"));
        let mut now = T0;
        let mut drafted = 0u8;
        let mut holds: Vec<ReservationId> = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            let id = |n: usize| MandateId::from_bytes([u8::try_from(n % 4).unwrap() + 1; 16]);
            let change = match op {
                Op::Draft { limit_cents, cap_cents } => {
                    drafted = (drafted % 4) + 1;
                    let mut m = mandate(drafted, "1", None);
                    m.terms.limit_amount = cents(limit_cents);
                    m.terms.max_amount_per_tx = cap_cents.map(cents).filter(|c| *c <= cents(limit_cents));
                    m.terms.valid_from = now;
                    m.terms.valid_until = now.plus_millis(3_600_000);
                    Change::DraftMandate(m)
                }
                Op::Sign(n) => sign(u8::try_from(n % 4).unwrap() + 1),
                Op::Revoke(n) => Change::RevokeMandate { wallet: wallet(), mandate: id(n) },
                Op::Authorize { cents: c, mandate } => authorize(u16::try_from(i).unwrap(), cents(c), mandate.map(|n| u8::try_from(n % 4).unwrap() + 1)),
                Op::Commit { nth, enforce } => match holds.get(nth) {
                    Some(r) => Change::Commit { wallet: wallet(), reservation: *r, destination: merchant(), settlement: None, enforce },
                    None => continue,
                },
                Op::Release(nth) => match holds.get(nth) {
                    Some(r) => Change::Release { wallet: wallet(), reservation: *r, reason: "test".into() },
                    None => continue,
                },
                Op::Advance { seconds } => {
                    now = now.plus_millis(seconds * 1000);
                    continue;
                }
            };
            if let Ok(Committed { outcome: Outcome::Authorization(Authorization::Reserved { reservation }), .. }) = batch.apply(&at(change, now)) {
                holds.push(reservation.id);
            }
            assert_consistent(&batch)?;
        }
        let effects = batch.finish();
        let net: i64 = effects.balances.iter().map(|b| b.after - b.before).sum();
        prop_assert_eq!(net, 0);
    }
}

fn external_payout(id: &str, n: u16, amount: Usdc) -> Change {
    let Change::Authorize(authorize) = authorize(n, amount, Some(1)) else {
        unreachable!()
    };
    let payout = Payout {
        id: id.parse().unwrap(),
        wallet_id: wallet(),
        agent_id: agent_id(),
        to_address: "0x0000000000000000000000000000000000000009".into(),
        amount,
        mandate_id: Some(MandateId::from_bytes([1; 16])),
        rail: purser_types::Rail::External,
        status: purser_types::PayoutStatus::PendingAuthorization,
        reservation_id: None,
        approval_id: None,
        settlement: None,
        failure_reason: None,
        created_at: T0,
        updated_at: T0,
    };
    Change::RequestPayout {
        payout,
        authorize,
        destination: None,
    }
}

fn payout_of(outcome: Outcome) -> Payout {
    let Outcome::Payout(crate::change::PayoutOutcome::Recorded { payout }) = outcome else {
        panic!("{outcome:?}")
    };
    payout
}

#[test]
fn an_external_payout_finishes_with_its_chain_leg_once() {
    use crate::change::PayoutResult;
    use purser_types::PayoutStatus;
    let external = AccountId::system(AccountKind::ExternalPayouts, Currency::Usdc);
    let mut snapshot = funded_snapshot("10");
    snapshot.ledger.insert(external, 0);
    let mut batch = Batch::new(snapshot);
    batch
        .apply(&at(Change::DraftMandate(mandate(1, "5", None)), T0))
        .unwrap();
    batch.apply(&at(sign(1), T0)).unwrap();
    let sent = payout_of(
        batch
            .apply(&at(external_payout("po-sent", 1, usdc("2")), T0))
            .unwrap()
            .outcome,
    );
    assert_eq!(sent.status, PayoutStatus::Authorized);
    let failed = payout_of(
        batch
            .apply(&at(external_payout("po-failed", 2, usdc("1")), T0))
            .unwrap()
            .outcome,
    );
    let finish = |payout: &Payout, result: PayoutResult| Change::FinishPayout {
        wallet: wallet(),
        payout: payout.id.clone(),
        reservation: payout.reservation_id.unwrap(),
        result,
    };
    let tx = PayoutResult::Sent {
        settlement: "0xabc".into(),
    };
    let done = payout_of(
        batch
            .apply(&at(finish(&sent, tx.clone()), T0))
            .unwrap()
            .outcome,
    );
    assert_eq!(done.status, PayoutStatus::Succeeded);
    assert_eq!(done.settlement.as_deref(), Some("0xabc"));
    let lost = PayoutResult::Failed {
        reason: "reverted".into(),
    };
    let undone = payout_of(
        batch
            .apply(&at(finish(&failed, lost.clone()), T0))
            .unwrap()
            .outcome,
    );
    assert_eq!(undone.status, PayoutStatus::Failed);
    assert_eq!(
        undone.failure_reason,
        Some(purser_types::ErrorCode::ChainTransferFailed)
    );
    // A second report of either changes nothing: the first one decided.
    let again = payout_of(batch.apply(&at(finish(&sent, lost), T0)).unwrap().outcome);
    assert_eq!(again, done);
    let again = payout_of(batch.apply(&at(finish(&failed, tx), T0)).unwrap().outcome);
    assert_eq!(again, undone);
    assert_eq!(batch.available(wallet()), usdc("8"));
    assert_eq!(batch.ledger.balance(external), Some(usdc("2").atomic_i64()));
    let m = batch.mandates.get(&MandateId::from_bytes([1; 16])).unwrap();
    assert_eq!((m.spent_amount, m.pending_amount), (usdc("2"), Usdc::ZERO));
}

#[test]
fn a_finished_ledger_payout_ignores_a_chain_report() {
    let mut batch = Batch::new(funded_snapshot("10"));
    batch
        .apply(&at(Change::DraftMandate(mandate(1, "5", None)), T0))
        .unwrap();
    batch.apply(&at(sign(1), T0)).unwrap();
    let Change::RequestPayout {
        payout, authorize, ..
    } = external_payout("po-ledger", 1, usdc("1"))
    else {
        unreachable!()
    };
    let ledger = Change::RequestPayout {
        payout: Payout {
            rail: purser_types::Rail::Ledger,
            ..payout
        },
        authorize,
        destination: Some(merchant()),
    };
    let paid = payout_of(batch.apply(&at(ledger, T0)).unwrap().outcome);
    assert_eq!(paid.status, purser_types::PayoutStatus::Succeeded);
    let finish = Change::FinishPayout {
        wallet: wallet(),
        payout: paid.id.clone(),
        reservation: paid.reservation_id.unwrap(),
        result: crate::change::PayoutResult::Failed { reason: "x".into() },
    };
    // Already succeeded: the report changes nothing.
    assert_eq!(
        payout_of(batch.apply(&at(finish, T0)).unwrap().outcome),
        paid
    );
}
