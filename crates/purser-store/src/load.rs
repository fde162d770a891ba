//! Loading (and on PostgreSQL locking) the rows a batch reads.

use purser_core::batch::{Needs, Snapshot, StoredKey};
use purser_types::Hash32;
use serde_json::{Value, json};
use sqlx::{AnyConnection, Row};

use crate::StoreError;
use crate::rows::agent_from_row;
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

pub(crate) async fn snapshot(
    conn: &mut AnyConnection,
    sql: &Statements,
    needs: &Needs,
) -> Result<Snapshot, StoreError> {
    let mut snapshot = Snapshot::default();
    if !needs.accounts.is_empty() {
        let rows = sqlx::query(sql.load_accounts.clone())
            .bind(list(&needs.accounts))
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let account = id
                .parse()
                .map_err(|_| corrupt(format!("account id {id:?}")))?;
            snapshot.ledger.insert(account, row.try_get("balance")?);
        }
    }
    if !needs.wallets.is_empty() {
        let rows = sqlx::query(sql.load_wallets.clone())
            .bind(list(&needs.wallets))
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            snapshot.wallets.insert(
                id.parse()
                    .map_err(|_| corrupt(format!("wallet id {id:?}")))?,
            );
        }
    }
    if !needs.agents.is_empty() {
        let rows = sqlx::query(sql.load_agents.clone())
            .bind(list(&needs.agents))
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let agent = agent_from_row(&row)?;
            snapshot.agents.insert(agent.id, agent);
        }
    }
    if !needs.keys.is_empty() {
        let slots: Vec<Value> = needs
            .keys
            .iter()
            .map(|(scope, key)| json!({ "scope": scope, "key": key }))
            .collect();
        let rows = sqlx::query(sql.load_keys.clone())
            .bind(Value::Array(slots).to_string())
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
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
    }
    Ok(snapshot)
}
