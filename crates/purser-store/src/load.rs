//! Loading (and on PostgreSQL locking) the rows a batch reads.
//!
//! Tables are read in one fixed order — payouts, reservations, approvals,
//! mandates, months, policies, wallets, agents, accounts — each in key order, so
//! concurrent batches on PostgreSQL queue behind each other instead of
//! deadlocking. Idempotency keys are read after the locks are held. A second round
//! reads the rows named by rows of the first (a reservation's mandate, agent and
//! month). The audit chain's head comes last: on PostgreSQL its lock is the one
//! every writer takes, so it is taken after all the others, and held to commit.
//! Each round is one [`Script`].

use purser_core::audit::ChainHead;
use purser_core::batch::{Needs, Snapshot, StoredKey, dependent_needs};
use purser_types::{Hash32, UnixMs};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::rows::{
    agent_from_row, approval_from_row, mandate_from_row, month_from_row, payout_from_row,
    policy_from_row, reservation_from_row,
};
use crate::rowset::{Answers, Cells, IdKey, RowsStatement, Script, Slot, table_row};
use crate::sql::Statements;
use crate::{Backend, StoreError};

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

table_row! {
    /// A payout's key.
    struct PayoutKey<'a> { wallet_id: String, id: &'a str }
}

table_row! {
    /// An agent's month.
    struct MonthKey<'a> { agent_id: String, month: &'a str }
}

table_row! {
    /// An idempotency key's slot.
    struct SlotKey<'a> { scope: &'a str, key: &'a str }
}

/// Loads everything `needs` names, then the rows those rows name, then the audit
/// chain's head.
pub(crate) async fn snapshot(
    conn: &mut AnyConnection,
    backend: Backend,
    sql: &Statements,
    needs: &Needs,
) -> Result<(Snapshot, ChainHead), StoreError> {
    let mut snapshot = Snapshot::default();
    // SQLite's writer already holds the database: the head may as well come in
    // the first round trip.
    let head_first = backend == Backend::Sqlite;
    let mut head = load(conn, backend, sql, needs, head_first, &mut snapshot).await?;
    let dependents = dependent_needs(&snapshot);
    if !dependents.is_empty() || head.is_none() {
        let second = load(
            conn,
            backend,
            sql,
            &dependents,
            head.is_none(),
            &mut snapshot,
        )
        .await?;
        head = head.or(second);
    }
    let head = head.ok_or_else(|| corrupt("the audit head was not read"))?;
    Ok((snapshot, head))
}

/// The slots of one round's statements.
#[derive(Default)]
struct Slots {
    payouts: Option<Slot>,
    reservations: Option<Slot>,
    approvals: Option<Slot>,
    mandates: Option<Slot>,
    agent_mandates: Option<Slot>,
    months: Option<Slot>,
    policies: Option<Slot>,
    wallets: Option<Slot>,
    agents: Option<Slot>,
    accounts: Option<Slot>,
    keys: Option<Slot>,
    head: Option<Slot>,
}

/// Adds `statement` over `keys` to the script, unless there are none.
fn add<K: Cells>(
    script: &mut Script,
    statement: &RowsStatement,
    body_args: &[i64],
    keys: &[K],
) -> Result<Option<Slot>, StoreError> {
    if keys.is_empty() {
        return Ok(None);
    }
    Ok(Some(script.add(statement, body_args, keys)?))
}

/// The text forms of ids, and the key rows that borrow them.
fn texts<T: ToString>(items: impl IntoIterator<Item = T>) -> Vec<String> {
    items.into_iter().map(|i| i.to_string()).collect()
}

fn ids(texts: &[String]) -> Vec<IdKey<'_>> {
    texts.iter().map(|id| IdKey { id }).collect()
}

/// One round: every read `needs` names, in the fixed order, then (if `with_head`)
/// the audit head. Returns the head if it was read.
async fn load(
    conn: &mut AnyConnection,
    backend: Backend,
    sql: &Statements,
    needs: &Needs,
    with_head: bool,
    snapshot: &mut Snapshot,
) -> Result<Option<ChainHead>, StoreError> {
    let mut script = Script::new(backend);
    let slots = plan(
        &mut script,
        sql,
        needs,
        with_head.then(|| backend.lock_audit_head()),
    )?;
    if script.is_empty() {
        return Ok(None);
    }
    let mut answers = script.run(conn).await?;
    decode(&mut answers, &slots, snapshot)?;
    match &slots.head {
        Some(slot) => head_from_rows(answers.rows(slot)).map(Some),
        None => Ok(None),
    }
}

fn plan(
    script: &mut Script,
    sql: &Statements,
    needs: &Needs,
    head: Option<&'static str>,
) -> Result<Slots, StoreError> {
    let payouts: Vec<PayoutKey<'_>> = needs
        .payouts
        .iter()
        .map(|(wallet, id)| PayoutKey {
            wallet_id: wallet.to_string(),
            id: id.as_str(),
        })
        .collect();
    let months: Vec<MonthKey<'_>> = needs
        .months
        .iter()
        .map(|(agent, month)| MonthKey {
            agent_id: agent.to_string(),
            month,
        })
        .collect();
    let keys: Vec<SlotKey<'_>> = needs
        .keys
        .iter()
        .map(|(scope, key)| SlotKey { scope, key })
        .collect();
    let now = needs.now.unwrap_or(UnixMs(0)).millis();
    let mut slots = Slots {
        payouts: add(script, &sql.load_payouts, &[], &payouts)?,
        reservations: add(
            script,
            &sql.load_reservations,
            &[],
            &ids(&texts(&needs.reservations)),
        )?,
        approvals: add(
            script,
            &sql.load_approvals,
            &[],
            &ids(&texts(&needs.approvals)),
        )?,
        mandates: add(
            script,
            &sql.load_mandates,
            &[],
            &ids(&texts(&needs.mandates)),
        )?,
        agent_mandates: add(
            script,
            &sql.load_agent_mandates,
            &[now],
            &ids(&texts(&needs.agent_mandates)),
        )?,
        months: add(script, &sql.load_months, &[], &months)?,
        policies: add(
            script,
            &sql.load_policies,
            &[],
            &ids(&texts(&needs.policies)),
        )?,
        wallets: add(script, &sql.load_wallets, &[], &ids(&texts(&needs.wallets)))?,
        agents: add(script, &sql.load_agents, &[], &ids(&texts(&needs.agents)))?,
        accounts: add(
            script,
            &sql.load_accounts,
            &[],
            &ids(&texts(&needs.accounts)),
        )?,
        // After every lock is held: a duplicate of a request another process is
        // committing waited on the same rows, and now sees that request's key.
        keys: add(script, &sql.load_keys, &[], &keys)?,
        head: None,
    };
    if let Some(text) = head {
        slots.head = Some(script.add_fixed(text, &[])?);
    }
    Ok(slots)
}

/// The rows a slot selected, none if the slot was not used.
fn rows(answers: &mut Answers, slot: &Option<Slot>) -> Vec<AnyRow> {
    slot.as_ref()
        .map(|slot| answers.rows(slot))
        .unwrap_or_default()
}

fn decode(answers: &mut Answers, slots: &Slots, snapshot: &mut Snapshot) -> Result<(), StoreError> {
    for row in rows(answers, &slots.payouts) {
        let payout = payout_from_row(&row)?;
        snapshot
            .payouts
            .insert((payout.value.wallet_id, payout.value.id.clone()), payout);
    }
    for row in rows(answers, &slots.reservations) {
        let reservation = reservation_from_row(&row)?;
        snapshot
            .reservations
            .insert(reservation.value.id, reservation);
    }
    for row in rows(answers, &slots.approvals) {
        let approval = approval_from_row(&row)?;
        snapshot.approvals.insert(approval.value.id, approval);
    }
    for row in rows(answers, &slots.mandates)
        .into_iter()
        .chain(rows(answers, &slots.agent_mandates))
    {
        let mandate = mandate_from_row(&row)?;
        snapshot.mandates.insert(mandate.value.id, mandate);
    }
    for row in rows(answers, &slots.months) {
        let (key, totals) = month_from_row(&row)?;
        snapshot.months.insert(key, totals);
    }
    for row in rows(answers, &slots.policies) {
        let (wallet, policy) = policy_from_row(&row)?;
        snapshot.policies.insert(wallet, policy);
    }
    decode_owners(answers, slots, snapshot)?;
    for row in rows(answers, &slots.keys) {
        let fingerprint: String = row.try_get("fingerprint")?;
        let outcome: String = row.try_get("outcome")?;
        let stored = StoredKey {
            fingerprint: Hash32::from_hex(&fingerprint)
                .ok_or_else(|| corrupt("idempotency fingerprint"))?,
            outcome: serde_json::from_str(&outcome).map_err(corrupt)?,
        };
        snapshot
            .keys
            .insert((row.try_get("scope")?, row.try_get("key")?), stored);
    }
    Ok(())
}

/// Wallets, agents and accounts: what owns and holds the money.
fn decode_owners(
    answers: &mut Answers,
    slots: &Slots,
    snapshot: &mut Snapshot,
) -> Result<(), StoreError> {
    for row in rows(answers, &slots.wallets) {
        let id: String = row.try_get("id")?;
        snapshot.wallets.insert(
            id.parse()
                .map_err(|_| corrupt(format!("wallet id {id:?}")))?,
        );
    }
    for row in rows(answers, &slots.agents) {
        let agent = agent_from_row(&row)?;
        snapshot.agents.insert(agent.id, agent);
    }
    for row in rows(answers, &slots.accounts) {
        let id: String = row.try_get("id")?;
        let account = id
            .parse()
            .map_err(|_| corrupt(format!("account id {id:?}")))?;
        snapshot.ledger.insert(account, row.try_get("balance")?);
    }
    Ok(())
}

pub(crate) fn head_from_rows(rows: Vec<AnyRow>) -> Result<ChainHead, StoreError> {
    let row = rows
        .first()
        .ok_or_else(|| corrupt("the audit head row is missing"))?;
    let seq: i64 = row.try_get("seq")?;
    let hash: String = row.try_get("hash")?;
    Ok(ChainHead {
        seq: u64::try_from(seq).map_err(|_| corrupt("negative audit head"))?,
        hash: Hash32::from_hex(&hash).ok_or_else(|| corrupt("audit head hash"))?,
    })
}
