#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The storage suite. Every scenario runs on SQLite and on PostgreSQL, and ends by
//! checking the ledger invariants and the audit chain.

use std::sync::atomic::{AtomicU64, Ordering};

use purser_core::batch::Refusal;
use purser_core::change::{Change, NewTransfer, Outcome};
use purser_core::ledger::{LedgerError, MemoryLedger};
use purser_store::{Backend, Committed, Idempotency, Store, StoreError, WriteRequest};
use purser_testkit::{TestDb, random_hex};
use purser_types::{
    AccountId, AccountKind, Actor, Agent, AgentId, AgentStatus, Currency, Hash32, TransferId,
    TransferKind, UnixMs, Usdc, Wallet, WalletId,
};
use sqlx::{AnyConnection, Connection, Executor};

static CLOCK_MS: AtomicU64 = AtomicU64::new(1_790_000_000_000);

fn now() -> UnixMs {
    UnixMs(i64::try_from(CLOCK_MS.fetch_add(1, Ordering::Relaxed)).unwrap())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

fn usdc(text: &str) -> Usdc {
    text.parse().unwrap()
}

fn onramp() -> AccountId {
    AccountId::system(AccountKind::SandboxOnramp, Currency::Usdc)
}

fn available(wallet: WalletId) -> AccountId {
    AccountId::available(wallet, Currency::Usdc)
}

fn request(actor: Actor, change: Change) -> WriteRequest {
    WriteRequest {
        at: now(),
        actor,
        idempotency: None,
        change,
    }
}

async fn create_wallet(store: &Store) -> WalletId {
    let id = WalletId::from_bytes(random_bytes());
    let wallet = Wallet {
        id,
        name: "test wallet".into(),
        currency: Currency::Usdc,
        address: format!("0x{}", random_hex(20)),
        created_at: now(),
    };
    let change = Change::CreateWallet {
        wallet,
        owner_token_hash: Hash32(random_bytes()),
        sealed_key: "sealed".into(),
        password_hash: None,
    };
    store
        .write(request(Actor::Owner(id), change))
        .await
        .unwrap();
    id
}

fn transfer(from: AccountId, to: AccountId, amount: Usdc) -> Change {
    Change::Transfer(NewTransfer {
        id: TransferId::from_bytes(random_bytes()),
        from,
        to,
        amount,
        kind: if from == onramp() {
            TransferKind::SandboxFunding
        } else {
            TransferKind::Adjustment
        },
        memo: None,
    })
}

async fn fund(store: &Store, wallet: WalletId, amount: Usdc) {
    store
        .write(request(
            Actor::Owner(wallet),
            transfer(onramp(), available(wallet), amount),
        ))
        .await
        .unwrap();
}

async fn available_balance(store: &Store, wallet: WalletId) -> Usdc {
    store
        .balances(wallet, Currency::Usdc)
        .await
        .unwrap()
        .unwrap()
        .available
}

/// Every scenario ends here: the ledger balances and the audit chain is intact.
async fn assert_sound(store: &Store) {
    let report = store.check_ledger().await.unwrap();
    assert!(
        report.is_ok(),
        "ledger invariants broken: {:?}",
        report.violations
    );
    let verification = store.verify_audit().await.unwrap();
    assert!(verification.is_ok(), "audit chain broken: {verification:?}");
}

async fn funding_moves_money_and_leaves_records(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let wallet = create_wallet(&store).await;
    fund(&store, wallet, usdc("100")).await;
    fund(&store, wallet, usdc("0.000001")).await;
    assert_eq!(available_balance(&store, wallet).await, usdc("100.000001"));
    let transfers = store
        .transfers(wallet, Currency::Usdc, Default::default())
        .await
        .unwrap();
    assert_eq!(transfers.len(), 2);
    assert_eq!(transfers[0].1.amount, usdc("0.000001"), "newest first");
    let audit = store
        .audit_for_wallet(wallet, Default::default())
        .await
        .unwrap();
    let actions: Vec<_> = audit.iter().map(|r| r.event.action.as_str()).collect();
    assert_eq!(
        actions,
        ["wallet.funded", "wallet.funded", "wallet.created"]
    );
    assert!(audit.iter().all(|r| r.event.actor == Actor::Owner(wallet)));
    assert_sound(&store).await;
    store.close().await;
    db.cleanup().await;
}

async fn idempotent_replay_and_conflict(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let wallet = create_wallet(&store).await;
    let key = |fingerprint: u8| Idempotency {
        scope: format!("owner:{wallet}"),
        key: "fund-once".into(),
        fingerprint: Hash32([fingerprint; 32]),
    };
    let change = transfer(onramp(), available(wallet), usdc("5"));
    let first = WriteRequest {
        idempotency: Some(key(1)),
        ..request(Actor::Owner(wallet), change.clone())
    };
    let original = store.write(first.clone()).await.unwrap();
    assert!(!original.replayed);
    let replay = store.write(first.clone()).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(
        replay.outcome, original.outcome,
        "a replay returns the original result"
    );
    assert_eq!(
        available_balance(&store, wallet).await,
        usdc("5"),
        "applied once"
    );

    let conflicting = WriteRequest {
        idempotency: Some(key(2)),
        ..first
    };
    assert!(matches!(
        store.write(conflicting).await,
        Err(StoreError::Refused(Refusal::IdempotencyConflict))
    ));
    let audit = store
        .audit_for_wallet(wallet, Default::default())
        .await
        .unwrap();
    assert_eq!(
        audit.len(),
        2,
        "one creation and one funding, no record for replays"
    );

    // Concurrent duplicates through two stores: one applies, the rest replay.
    let second_store = db.open().await;
    let change = transfer(onramp(), available(wallet), usdc("1"));
    let racing = WriteRequest {
        idempotency: Some(Idempotency {
            key: "race".into(),
            ..key(3)
        }),
        ..request(Actor::Owner(wallet), change)
    };
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 {
            store.clone()
        } else {
            second_store.clone()
        };
        let racing = racing.clone();
        tasks.push(tokio::spawn(async move { store.write(racing).await }));
    }
    let mut applied = 0;
    for task in tasks {
        let committed: Committed = task.await.unwrap().unwrap();
        applied += usize::from(!committed.replayed);
    }
    assert_eq!(applied, 1);
    assert_eq!(available_balance(&store, wallet).await, usdc("6"));
    assert_sound(&store).await;
    second_store.close().await;
    store.close().await;
    db.cleanup().await;
}

async fn refusals_change_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let (payer, payee) = (create_wallet(&store).await, create_wallet(&store).await);
    fund(&store, payer, usdc("1")).await;
    let key = Idempotency {
        scope: format!("owner:{payer}"),
        key: "pay".into(),
        fingerprint: Hash32([9; 32]),
    };
    let pay = |amount: &str| WriteRequest {
        idempotency: Some(key.clone()),
        ..request(
            Actor::Owner(payer),
            transfer(available(payer), available(payee), usdc(amount)),
        )
    };
    let refused = store.write(pay("1.5")).await;
    assert!(matches!(
        refused,
        Err(StoreError::Refused(Refusal::Ledger(
            LedgerError::InsufficientFunds(_)
        )))
    ));
    assert_eq!(available_balance(&store, payer).await, usdc("1"));
    assert_eq!(available_balance(&store, payee).await, Usdc::ZERO);
    assert_eq!(
        store
            .transfers(payee, Currency::Usdc, Default::default())
            .await
            .unwrap()
            .len(),
        0
    );
    // The refusal did not consume the key: after funding, the same request succeeds.
    fund(&store, payer, usdc("1")).await;
    assert!(!store.write(pay("1.5")).await.unwrap().replayed);
    assert_eq!(available_balance(&store, payee).await, usdc("1.5"));

    let unknown = WalletId::from_bytes(random_bytes());
    let to_nowhere = store.write(request(
        Actor::Owner(payer),
        transfer(available(payer), available(unknown), usdc("0.1")),
    ));
    assert!(matches!(
        to_nowhere.await,
        Err(StoreError::Refused(Refusal::Ledger(
            LedgerError::UnknownAccount(_)
        )))
    ));
    let to_self = store.write(request(
        Actor::Owner(payer),
        transfer(available(payer), available(payer), usdc("0.1")),
    ));
    assert!(matches!(
        to_self.await,
        Err(StoreError::Refused(Refusal::Ledger(
            LedgerError::SameAccount
        )))
    ));
    let zero = store.write(request(
        Actor::Owner(payer),
        transfer(onramp(), available(payer), Usdc::ZERO),
    ));
    assert!(matches!(
        zero.await,
        Err(StoreError::Refused(Refusal::Ledger(
            LedgerError::ZeroAmount
        )))
    ));
    assert_eq!(available_balance(&store, payer).await, usdc("0.5"));
    assert_sound(&store).await;
    store.close().await;
    db.cleanup().await;
}

/// 200 concurrent transfers of one unit from a balance of 100 units, through two
/// stores on one database (two committers, as two server processes would have).
async fn concurrent_transfers_never_overspend(backend: Backend) {
    let db = TestDb::new(backend).await;
    let stores = [db.open().await, db.open().await];
    let (payer, payee) = (
        create_wallet(&stores[0]).await,
        create_wallet(&stores[0]).await,
    );
    let one_unit = Usdc::from_atomic(1).unwrap();
    fund(&stores[0], payer, Usdc::from_atomic(100).unwrap()).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = stores[i % 2].clone();
        let change = transfer(available(payer), available(payee), one_unit);
        tasks.push(tokio::spawn(async move {
            store.write(request(Actor::Owner(payer), change)).await
        }));
    }
    let (mut succeeded, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => succeeded += 1,
            Err(StoreError::Refused(Refusal::Ledger(LedgerError::InsufficientFunds(_)))) => {
                refused += 1
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((succeeded, refused), (100, 100));
    assert_eq!(available_balance(&stores[0], payer).await, Usdc::ZERO);
    assert_eq!(
        available_balance(&stores[1], payee).await,
        Usdc::from_atomic(100).unwrap()
    );
    assert_sound(&stores[0]).await;
    for store in &stores {
        store.close().await;
    }
    db.cleanup().await;
}

/// Batches bigger than one statement carries (1,024 rows on SQLite) are split
/// across statements and still commit as one.
async fn huge_batches_commit_whole(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db
        .open_with(|c| {
            c.max_batch = 4096;
            c.queue_depth = 4096;
        })
        .await;
    let (payer, payee) = (create_wallet(&store).await, create_wallet(&store).await);
    fund(&store, payer, Usdc::from_atomic(1_500).unwrap()).await;
    let one_unit = Usdc::from_atomic(1).unwrap();
    let tasks: Vec<_> = (0..1_500)
        .map(|_| {
            let store = store.clone();
            let change = transfer(available(payer), available(payee), one_unit);
            tokio::spawn(async move { store.write(request(Actor::Owner(payer), change)).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(available_balance(&store, payer).await, Usdc::ZERO);
    assert_eq!(
        available_balance(&store, payee).await,
        Usdc::from_atomic(1_500).unwrap()
    );
    assert_sound(&store).await;
    store.close().await;
    db.cleanup().await;
}

async fn agents_register_and_revoke_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let wallet = create_wallet(&store).await;
    let other_wallet = create_wallet(&store).await;
    let agent = Agent {
        id: AgentId::from_bytes(random_bytes()),
        wallet_id: wallet,
        name: "researcher".into(),
        status: AgentStatus::Active,
        created_at: now(),
        revoked_at: None,
    };
    let credential_hash = Hash32(random_bytes());
    let register = Change::RegisterAgent {
        agent: agent.clone(),
        credential_hash,
    };
    store
        .write(request(Actor::Owner(wallet), register))
        .await
        .unwrap();
    assert_eq!(
        store.agent_by_credential(&credential_hash).await.unwrap(),
        Some(agent.clone())
    );

    // Another wallet's owner cannot revoke it: the agent is not theirs.
    let foreign = Change::RevokeAgent {
        wallet: other_wallet,
        agent: agent.id,
    };
    assert!(matches!(
        store
            .write(request(Actor::Owner(other_wallet), foreign))
            .await,
        Err(StoreError::Refused(Refusal::NotFound))
    ));

    let revoke = Change::RevokeAgent {
        wallet,
        agent: agent.id,
    };
    for _ in 0..2 {
        let committed = store
            .write(request(Actor::Owner(wallet), revoke.clone()))
            .await
            .unwrap();
        let Outcome::Agent(revoked) = committed.outcome else {
            panic!("expected an agent")
        };
        assert_eq!(revoked.status, AgentStatus::Revoked);
    }
    let audit = store
        .audit_for_wallet(wallet, Default::default())
        .await
        .unwrap();
    let revocations = audit
        .iter()
        .filter(|r| r.event.action == "agent.revoked")
        .count();
    assert_eq!(revocations, 1, "revoking twice leaves one record");
    assert_eq!(store.agents(wallet).await.unwrap().len(), 1);
    assert!(store.agents(other_wallet).await.unwrap().is_empty());
    assert_sound(&store).await;
    store.close().await;
    db.cleanup().await;
}

/// An attacker with write access to the database edits, deletes or truncates
/// audit records (after dropping the immutability triggers); verification names
/// the damaged record.
async fn audit_tampering_is_detected(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let wallet = create_wallet(&store).await;
    for _ in 0..4 {
        fund(&store, wallet, usdc("1")).await;
    }
    assert_eq!(store.verify_audit().await.unwrap().unwrap().records, 5);
    store.close().await;

    let mut conn = AnyConnection::connect(&raw_url(&db)).await.unwrap();
    let drop_triggers = match backend {
        Backend::Sqlite => "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;",
        Backend::Postgres => "DROP TRIGGER audit_immutable ON audit_log;",
    };
    let edit = "UPDATE audit_log SET details = REPLACE(details, '\"1\"', '\"1000\"') WHERE seq = 3";
    let cases: [(&str, &str); 3] = [
        (edit, "audit record 3 was edited"),
        (
            "DELETE FROM audit_log WHERE seq = 2",
            "audit record 2 is missing",
        ),
        (
            "DELETE FROM audit_log WHERE seq = 5",
            "ends at record 4 but the head is record 5",
        ),
    ];
    conn.execute(drop_triggers).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    tx.execute("CREATE TABLE audit_backup AS SELECT * FROM audit_log")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for (tamper, expected) in cases {
        conn.execute(tamper).await.unwrap();
        let store = db.open().await;
        let verdict = store.verify_audit().await.unwrap().unwrap_err().to_string();
        assert!(verdict.contains(expected), "{tamper}: {verdict}");
        store.close().await;
        conn.execute("DELETE FROM audit_log").await.unwrap();
        conn.execute("INSERT INTO audit_log SELECT * FROM audit_backup")
            .await
            .unwrap();
    }
    // Restored, the chain verifies again.
    let store = db.open().await;
    assert!(store.verify_audit().await.unwrap().is_ok());
    store.close().await;
    conn.close().await.unwrap();
    db.cleanup().await;
}

fn raw_url(db: &TestDb) -> String {
    purser_store::dialect::normalize_url(&db.url).unwrap().1
}

/// Property test: random transfers between the on-ramp and three wallets, applied
/// to the store and to the in-memory model. Every outcome and balance agrees, and
/// the ledger invariants hold after every sequence. Failures shrink as usual.
fn random_sequences_match_the_model(backend: Backend) {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(TestDb::new(backend));
    let store = runtime.block_on(db.open_with(|c| c.max_batch = 8));
    let steps = proptest::collection::vec((0usize..4, 0usize..4, 0u64..3_000), 1..40);
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&steps, |steps| {
        runtime.block_on(async {
            let wallets = [
                create_wallet(&store).await,
                create_wallet(&store).await,
                create_wallet(&store).await,
            ];
            let accounts: Vec<AccountId> = std::iter::once(onramp())
                .chain(wallets.iter().map(|w| available(*w)))
                .collect();
            // The on-ramp is shared across cases, but its floor is far below anything
            // these amounts reach, so starting the model's copy at zero is exact.
            let mut model = MemoryLedger::default();
            accounts.iter().for_each(|a| model.open(*a));
            for (from, to, amount) in steps {
                let (from, to) = (accounts[from], accounts[to]);
                let amount = Usdc::from_atomic(amount).unwrap();
                let expected = model.transfer(from, to, amount);
                let actual = store
                    .write(request(Actor::System, transfer(from, to, amount)))
                    .await;
                let agree = match (&expected, &actual) {
                    (Ok(()), Ok(_)) => true,
                    (Err(e), Err(StoreError::Refused(Refusal::Ledger(a)))) => e == a,
                    _ => false,
                };
                if !agree {
                    return Err(TestCaseError::fail(format!(
                        "model {expected:?}, store {actual:?}"
                    )));
                }
            }
            for wallet in wallets {
                let stored = available_balance(&store, wallet).await.atomic_i64();
                if Some(stored) != model.balance(available(wallet)) {
                    return Err(TestCaseError::fail(format!("balance of {wallet} differs")));
                }
            }
            let report = store.check_ledger().await.unwrap();
            if !report.is_ok() {
                return Err(TestCaseError::fail(format!("{:?}", report.violations)));
            }
            Ok(())
        })
    });
    runtime.block_on(async {
        assert_sound(&store).await;
        store.close().await;
        db.cleanup().await;
    });
    result.unwrap();
}

/// Writes queued when the store closes are all committed; later writes are refused.
async fn close_drains_the_queue(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open_with(|c| c.max_batch = 4).await;
    let wallet = create_wallet(&store).await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let store = store.clone();
        let change = transfer(onramp(), available(wallet), usdc("1"));
        tasks.push(tokio::spawn(async move {
            store.write(request(Actor::Owner(wallet), change)).await
        }));
    }
    // One write committed: the committer is running and the rest are in flight.
    let first = tasks.remove(0).await.unwrap();
    assert!(first.is_ok());
    store.close().await;
    let mut acknowledged = 1u64;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => acknowledged += 1,
            Err(StoreError::ShuttingDown) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    let reopened = db.open().await;
    assert_eq!(
        available_balance(&reopened, wallet).await,
        Usdc::from_whole(acknowledged).unwrap()
    );
    assert!(acknowledged > 0);
    let late = store.write(request(
        Actor::Owner(wallet),
        transfer(onramp(), available(wallet), usdc("1")),
    ));
    assert!(matches!(late.await, Err(StoreError::ShuttingDown)));
    assert_sound(&reopened).await;
    reopened.close().await;
    db.cleanup().await;
}

/// Reopening runs no migration twice and keeps the data.
async fn reopening_keeps_everything(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let wallet = create_wallet(&store).await;
    fund(&store, wallet, usdc("7")).await;
    store.close().await;
    let store = db.open().await;
    assert_eq!(available_balance(&store, wallet).await, usdc("7"));
    assert_eq!(store.meta_init("k", "first").await.unwrap(), "first");
    assert_eq!(store.meta_init("k", "second").await.unwrap(), "first");
    assert_sound(&store).await;
    store.close().await;
    db.cleanup().await;
}

/// SQLite: a write's answer comes only after the WAL flush behind it, so once every
/// answer is in, nothing committed is still waiting to become durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_answers_follow_the_wal_flush() {
    use futures_util::FutureExt;
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.open().await;
    let wallet = create_wallet(&store).await;
    let writes = (0..200).map(|_| {
        let store = store.clone();
        let change = transfer(onramp(), available(wallet), usdc("0.01"));
        tokio::spawn(async move { store.write(request(Actor::Owner(wallet), change)).await })
    });
    for write in futures_util::future::join_all(writes).await {
        write.unwrap().unwrap();
    }
    // The last answer left after the flush that covered every batch: settled at once.
    assert!(matches!(store.settled().now_or_never(), Some(Ok(()))));
    assert_eq!(available_balance(&store, wallet).await, usdc("2"));
    assert_sound(&store).await;
    store.close().await;
    db.cleanup().await;
}

/// SQLite: when the WAL cannot be flushed (here its file was deleted under the
/// running store), no change is acknowledged and the store takes no more writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_failed_flush_stops_writes() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.open().await;
    let wallet = create_wallet(&store).await;
    let wal = db.dir().unwrap().join("purser.db-wal");
    std::fs::remove_file(&wal).unwrap();
    let funding = transfer(onramp(), available(wallet), usdc("1"));
    let first = store.write(request(Actor::Owner(wallet), funding)).await;
    assert!(matches!(first, Err(StoreError::NotDurable)), "{first:?}");
    let funding = transfer(onramp(), available(wallet), usdc("1"));
    let second = store.write(request(Actor::Owner(wallet), funding)).await;
    assert!(matches!(second, Err(StoreError::NotDurable)), "{second:?}");
    assert!(matches!(store.settled().await, Err(StoreError::NotDurable)));
    assert_eq!(
        StoreError::NotDurable.code().as_str(),
        "service_unavailable"
    );
    store.close().await;
    db.cleanup().await;
}

macro_rules! suite {
    ($backend:ident, $variant:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn funding_moves_money_and_leaves_records() {
                super::funding_moves_money_and_leaves_records($variant).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn idempotent_replay_and_conflict() {
                super::idempotent_replay_and_conflict($variant).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refusals_change_nothing() {
                super::refusals_change_nothing($variant).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_transfers_never_overspend() {
                super::concurrent_transfers_never_overspend($variant).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn huge_batches_commit_whole() {
                super::huge_batches_commit_whole($variant).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn agents_register_and_revoke_once() {
                super::agents_register_and_revoke_once($variant).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn audit_tampering_is_detected() {
                super::audit_tampering_is_detected($variant).await;
            }
            #[test]
            fn random_sequences_match_the_model() {
                super::random_sequences_match_the_model($variant);
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn close_drains_the_queue() {
                super::close_drains_the_queue($variant).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reopening_keeps_everything() {
                super::reopening_keeps_everything($variant).await;
            }
        }
    };
}

suite!(sqlite, Backend::Sqlite);
suite!(postgres, Backend::Postgres);
