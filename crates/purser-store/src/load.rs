//! Loading (and on PostgreSQL locking) the rows a batch reads.
//!
//! Tables are read in one fixed order — payouts, reservations, approvals,
//! mandates, months, policies, agents, accounts, then the audit head when
//! persisting — each in key order, so concurrent batches on PostgreSQL queue
//! behind each other instead of deadlocking. Idempotency keys are read after the
//! locks are held. A second round reads the rows named by rows of the first (a
//! reservation's mandate, agent and month).

use purser_core::batch::{Needs, Snapshot, StoredKey, dependent_needs};
use purser_types::{Hash32, UnixMs};
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row, SqlStr};

use crate::StoreError;
use crate::rows::{
    agent_from_row, approval_from_row, mandate_from_row, month_from_row, payout_from_row,
    policy_from_row, reservation_from_row,
};
use crate::sql::Statements;

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// A JSON array of the items' text forms.
fn list<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    Value::Array(
        items
            .into_iter()
            .map(|i| Value::String(i.to_string()))
            .collect(),
    )
    .to_string()
}

async fn fetch(
    conn: &mut AnyConnection,
    statement: &SqlStr,
    keys: String,
) -> Result<Vec<AnyRow>, StoreError> {
    Ok(sqlx::query(statement.clone())
        .bind(keys)
        .fetch_all(conn)
        .await?)
}

/// Loads everything `needs` names, then the rows those rows name.
pub(crate) async fn snapshot(
    conn: &mut AnyConnection,
    sql: &Statements,
    needs: &Needs,
) -> Result<Snapshot, StoreError> {
    let mut snapshot = Snapshot::default();
    load(conn, sql, needs, &mut snapshot).await?;
    let dependents = dependent_needs(&snapshot);
    if !dependents.is_empty() {
        load(conn, sql, &dependents, &mut snapshot).await?;
    }
    Ok(snapshot)
}

async fn load(
    conn: &mut AnyConnection,
    sql: &Statements,
    needs: &Needs,
    snapshot: &mut Snapshot,
) -> Result<(), StoreError> {
    if !needs.payouts.is_empty() {
        let keys = needs
            .payouts
            .iter()
            .map(|(wallet, id)| json!({"wallet_id": wallet, "id": id}));
        for row in fetch(
            conn,
            &sql.load_payouts,
            Value::Array(keys.collect()).to_string(),
        )
        .await?
        {
            let payout = payout_from_row(&row)?;
            snapshot
                .payouts
                .insert((payout.value.wallet_id, payout.value.id.clone()), payout);
        }
    }
    if !needs.reservations.is_empty() {
        for row in fetch(conn, &sql.load_reservations, list(&needs.reservations)).await? {
            let reservation = reservation_from_row(&row)?;
            snapshot
                .reservations
                .insert(reservation.value.id, reservation);
        }
    }
    if !needs.approvals.is_empty() {
        for row in fetch(conn, &sql.load_approvals, list(&needs.approvals)).await? {
            let approval = approval_from_row(&row)?;
            snapshot.approvals.insert(approval.value.id, approval);
        }
    }
    load_mandates(conn, sql, needs, snapshot).await?;
    if !needs.months.is_empty() {
        let keys = needs
            .months
            .iter()
            .map(|(agent, month)| json!({"agent_id": agent, "month": month}));
        for row in fetch(
            conn,
            &sql.load_months,
            Value::Array(keys.collect()).to_string(),
        )
        .await?
        {
            let (key, totals) = month_from_row(&row)?;
            snapshot.months.insert(key, totals);
        }
    }
    if !needs.policies.is_empty() {
        for row in fetch(conn, &sql.load_policies, list(&needs.policies)).await? {
            let (wallet, policy) = policy_from_row(&row)?;
            snapshot.policies.insert(wallet, policy);
        }
    }
    load_owners(conn, sql, needs, snapshot).await?;
    // Last, after every lock is held: a duplicate of a request another process is
    // committing waited on the same rows, and now sees that request's key.
    load_keys(conn, sql, needs, snapshot).await
}

async fn load_keys(
    conn: &mut AnyConnection,
    sql: &Statements,
    needs: &Needs,
    snapshot: &mut Snapshot,
) -> Result<(), StoreError> {
    if needs.keys.is_empty() {
        return Ok(());
    }
    let slots: Vec<Value> = needs
        .keys
        .iter()
        .map(|(scope, key)| json!({ "scope": scope, "key": key }))
        .collect();
    for row in fetch(conn, &sql.load_keys, Value::Array(slots).to_string()).await? {
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

async fn load_mandates(
    conn: &mut AnyConnection,
    sql: &Statements,
    needs: &Needs,
    snapshot: &mut Snapshot,
) -> Result<(), StoreError> {
    if !needs.mandates.is_empty() {
        for row in fetch(conn, &sql.load_mandates, list(&needs.mandates)).await? {
            let mandate = mandate_from_row(&row)?;
            snapshot.mandates.insert(mandate.value.id, mandate);
        }
    }
    if !needs.agent_mandates.is_empty() {
        let now = needs.now.unwrap_or(UnixMs(0)).millis();
        let rows = sqlx::query(sql.load_agent_mandates.clone())
            .bind(list(&needs.agent_mandates))
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let mandate = mandate_from_row(&row)?;
            snapshot.mandates.insert(mandate.value.id, mandate);
        }
    }
    Ok(())
}

/// Wallets, agents and accounts: what owns and holds the money, read last.
async fn load_owners(
    conn: &mut AnyConnection,
    sql: &Statements,
    needs: &Needs,
    snapshot: &mut Snapshot,
) -> Result<(), StoreError> {
    if !needs.wallets.is_empty() {
        for row in fetch(conn, &sql.load_wallets, list(&needs.wallets)).await? {
            let id: String = row.try_get("id")?;
            snapshot.wallets.insert(
                id.parse()
                    .map_err(|_| corrupt(format!("wallet id {id:?}")))?,
            );
        }
    }
    if !needs.agents.is_empty() {
        for row in fetch(conn, &sql.load_agents, list(&needs.agents)).await? {
            let agent = agent_from_row(&row)?;
            snapshot.agents.insert(agent.id, agent);
        }
    }
    if !needs.accounts.is_empty() {
        for row in fetch(conn, &sql.load_accounts, list(&needs.accounts)).await? {
            let id: String = row.try_get("id")?;
            let account = id
                .parse()
                .map_err(|_| corrupt(format!("account id {id:?}")))?;
            snapshot.ledger.insert(account, row.try_get("balance")?);
        }
    }
    Ok(())
}
