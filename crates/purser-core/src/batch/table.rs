//! A table of rows loaded at a version, changed in memory, written back guarded.

use std::collections::BTreeMap;

/// A row as loaded, with the version storage holds for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<V> {
    /// The row.
    pub value: V,
    /// Its version; the update that writes it back requires this version still.
    pub version: i64,
}

/// A row to write: inserted when `version` is `None`, else updated only if the
/// stored version is still `version` (and bumped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write<K, V> {
    /// The row's key.
    pub key: K,
    /// The row's new value.
    pub value: V,
    /// The version it was loaded at; `None` for a new row.
    pub version: Option<i64>,
}

#[derive(Debug, Clone)]
struct Tracked<V> {
    value: V,
    loaded: Option<i64>,
    dirty: bool,
}

/// The working copy of one table within a batch, with a journal of the rows'
/// previous values so a refused change can be undone.
#[derive(Debug, Clone)]
pub(crate) struct Table<K, V> {
    rows: BTreeMap<K, Tracked<V>>,
    journal: Vec<(K, Option<Tracked<V>>)>,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            journal: Vec::new(),
        }
    }
}

impl<K: Ord + Clone, V: Clone> Table<K, V> {
    /// Starts from the loaded rows.
    pub(crate) fn loaded(rows: BTreeMap<K, Versioned<V>>) -> Self {
        let rows = rows
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    Tracked {
                        value: v.value,
                        loaded: Some(v.version),
                        dirty: false,
                    },
                )
            })
            .collect();
        Self {
            rows,
            journal: Vec::new(),
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.rows.get(key).map(|t| &t.value)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.rows.values().map(|t| &t.value)
    }

    /// Sets a row, keeping the version it was loaded at.
    pub(crate) fn put(&mut self, key: K, value: V) {
        let loaded = self.rows.get(&key).and_then(|t| t.loaded);
        let previous = self.rows.insert(
            key.clone(),
            Tracked {
                value,
                loaded,
                dirty: true,
            },
        );
        self.journal.push((key, previous));
    }

    /// A mark to roll back to.
    pub(crate) fn mark(&self) -> usize {
        self.journal.len()
    }

    /// Undoes every `put` since `mark`.
    pub(crate) fn rollback(&mut self, mark: usize) {
        while self.journal.len() > mark {
            let Some((key, previous)) = self.journal.pop() else {
                break;
            };
            match previous {
                Some(row) => self.rows.insert(key, row),
                None => self.rows.remove(&key),
            };
        }
    }

    /// Forgets the journal: what it recorded is final.
    pub(crate) fn settle(&mut self) {
        self.journal.clear();
    }

    /// The rows to write.
    pub(crate) fn writes(self) -> Vec<Write<K, V>> {
        self.rows
            .into_iter()
            .filter(|(_, t)| t.dirty)
            .map(|(key, t)| Write {
                key,
                value: t.value,
                version: t.loaded,
            })
            .collect()
    }
}
