//! Statements over a set of rows: how the committer reads and writes many rows in
//! one round trip.
//!
//! Each statement starts with a common table expression holding the rows, and its
//! body (the same on both engines) reads them from there. The engines fill that
//! table differently, each the fastest way it has:
//!
//! * PostgreSQL gets one JSON array parameter and unpacks it with
//!   `json_to_recordset`: the statement text never changes, so it is prepared once.
//! * SQLite gets the rows as bound parameters of a `VALUES` list. Unpacking JSON
//!   costs SQLite several times more per row than binding does, but a `VALUES` list
//!   has one text per row count; so the list is padded with rows of NULLs up to the
//!   next power of four, which bounds the texts (and prepared statements) to a few
//!   per statement. Padding rows never match a key and inserts filter them out.

use std::sync::{Arc, OnceLock};

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::error::BoxDynError;
use sqlx::{AnyConnection, Arguments, AssertSqlSafe, Either, Executor, SqlSafeStr, SqlStr};

use crate::Backend;

/// The SQL type of a column, which PostgreSQL needs to unpack JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    /// `TEXT`.
    Text,
    /// `BIGINT`.
    Int,
}

/// A column's name and type.
pub(crate) type Columns = &'static [(&'static str, Ty)];

/// One value bound as a SQL parameter.
pub(crate) trait Cell {
    /// The column type this value fills.
    const TY: Ty;
    /// Appends the value to `args`.
    fn add_to(&self, args: &mut AnyArguments) -> Result<(), BoxDynError>;
}

/// A row bound as SQL parameters, column by column, in `NAMES` order. Serialized
/// (as a JSON object with the same names) for PostgreSQL.
pub(crate) trait Cells: Serialize {
    /// The column names, in binding order.
    const NAMES: &'static [&'static str];
    /// Appends every column's value to `args`.
    fn add_cells(&self, args: &mut AnyArguments) -> Result<(), BoxDynError>;
}

impl Cell for i64 {
    const TY: Ty = Ty::Int;
    fn add_to(&self, args: &mut AnyArguments) -> Result<(), BoxDynError> {
        args.add(*self)
    }
}

impl Cell for u64 {
    const TY: Ty = Ty::Int;
    fn add_to(&self, args: &mut AnyArguments) -> Result<(), BoxDynError> {
        args.add(i64::try_from(*self)?)
    }
}

impl Cell for str {
    const TY: Ty = Ty::Text;
    fn add_to(&self, args: &mut AnyArguments) -> Result<(), BoxDynError> {
        args.add(self.to_owned())
    }
}

impl Cell for String {
    const TY: Ty = Ty::Text;
    fn add_to(&self, args: &mut AnyArguments) -> Result<(), BoxDynError> {
        args.add(self.clone())
    }
}

impl<T: Cell + ?Sized> Cell for &T {
    const TY: Ty = T::TY;
    fn add_to(&self, args: &mut AnyArguments) -> Result<(), BoxDynError> {
        (**self).add_to(args)
    }
}

impl<T: Cell> Cell for Option<T> {
    const TY: Ty = T::TY;
    fn add_to(&self, args: &mut AnyArguments) -> Result<(), BoxDynError> {
        match self {
            Some(value) => value.add_to(args),
            None => add_null(args, T::TY),
        }
    }
}

fn add_null(args: &mut AnyArguments, ty: Ty) -> Result<(), BoxDynError> {
    match ty {
        Ty::Text => args.add(Option::<String>::None),
        Ty::Int => args.add(Option::<i64>::None),
    }
}

/// Ids, hashes and other values stored as their text form.
macro_rules! text_cells {
    ($($ty:ty),* $(,)?) => {$(
        impl Cell for $ty {
            const TY: Ty = Ty::Text;
            fn add_to(&self, args: &mut AnyArguments) -> Result<(), BoxDynError> {
                args.add(self.to_string())
            }
        }
    )*};
}

text_cells!(
    purser_types::WalletId,
    purser_types::AgentId,
    purser_types::TransferId,
    purser_types::MandateId,
    purser_types::ReservationId,
    purser_types::ApprovalId,
    purser_types::PayoutId,
    purser_types::AccountId,
    purser_types::Hash32,
);

/// Declares a row struct whose fields are its columns, in order: it serializes for
/// PostgreSQL and binds for SQLite, from the one list of fields.
macro_rules! table_row {
    ($(#[$meta:meta])* struct $name:ident $(<$lt:lifetime>)? { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(serde::Serialize)]
        pub(crate) struct $name $(<$lt>)? { $(pub(crate) $field: $ty),* }

        impl $(<$lt>)? $crate::rowset::Cells for $name $(<$lt>)? {
            const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];
            fn add_cells(&self, args: &mut sqlx::any::AnyArguments) -> Result<(), sqlx::error::BoxDynError> {
                $( $crate::rowset::Cell::add_to(&self.$field, args)?; )*
                Ok(())
            }
        }
    };
}
pub(crate) use table_row;

table_row! {
    /// A key that is one id.
    struct IdKey<'a> { id: &'a str }
}

/// The most rows one statement carries: within SQLite's 32,766 parameters for the
/// widest table, and a power of four.
const MAX_ROWS: usize = 1024;

/// How many rows a statement for `rows` rows carries once padded.
fn padded(rows: usize) -> usize {
    let mut size = 1;
    while size < rows {
        size *= 4;
    }
    size
}

fn statement(text: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(text)).into_sql_str()
}

/// A statement whose body reads a table of rows named `table` with `columns`.
/// The body's own parameters (`$1`…) come before the rows'.
pub(crate) struct RowsStatement {
    backend: Backend,
    table: &'static str,
    columns: Vec<(&'static str, Ty)>,
    body_params: usize,
    body: String,
    postgres: OnceLock<SqlStr>,
    /// SQLite's texts, by padded size: 1, 4, 16, 64, 256, 1024 rows.
    sqlite: [OnceLock<SqlStr>; 6],
}

impl RowsStatement {
    pub(crate) fn new(
        backend: Backend,
        table: &'static str,
        columns: &[(&'static str, Ty)],
        body_params: usize,
        body: String,
    ) -> RowsStatement {
        RowsStatement {
            backend,
            table,
            columns: columns.to_vec(),
            body_params,
            body,
            postgres: OnceLock::new(),
            sqlite: Default::default(),
        }
    }

    /// The column names the rows must bind, in order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().map(|(name, _)| *name)
    }

    fn text(&self, padded_rows: usize) -> SqlStr {
        match self.backend {
            Backend::Postgres => self
                .postgres
                .get_or_init(|| statement(self.postgres_text()))
                .clone(),
            Backend::Sqlite => {
                let slot = padded_rows.trailing_zeros() as usize / 2;
                self.sqlite[slot.min(5)]
                    .get_or_init(|| statement(self.sqlite_text(padded_rows)))
                    .clone()
            }
        }
    }

    fn postgres_text(&self) -> String {
        let fields: Vec<String> = self
            .columns
            .iter()
            .map(|(c, t)| format!("{c} {}", if *t == Ty::Int { "bigint" } else { "text" }))
            .collect();
        format!(
            "WITH {t} AS (SELECT * FROM json_to_recordset(${p}::json) AS r({f})) {body}",
            t = self.table,
            p = self.body_params + 1,
            f = fields.join(", "),
            body = self.body
        )
    }

    /// SQLite numbers plain `?` parameters in the order they appear, and parses
    /// them in linear time (numbered ones, `$n`, cost quadratic time to prepare):
    /// so the rows' parameters come first and the body's follow them.
    fn sqlite_text(&self, rows: usize) -> String {
        let tuple = format!("({})", vec!["?"; self.columns.len()].join(","));
        let mut body = self.body.clone();
        for param in (1..=self.body_params).rev() {
            body = body.replace(&format!("${param}"), "?");
        }
        format!(
            "WITH {t}({names}) AS (VALUES {tuples}) {body}",
            t = self.table,
            names = self.names().collect::<Vec<_>>().join(", "),
            tuples = vec![tuple; rows].join(","),
        )
    }

    /// Binds one chunk of rows (and the body's own values) into `args` and returns
    /// the text that reads them.
    fn bind_into<R: Cells>(
        &self,
        args: &mut AnyArguments,
        body_args: &[i64],
        rows: &[R],
    ) -> Result<SqlStr, BoxDynError> {
        debug_assert!(
            R::NAMES.iter().copied().eq(self.names()),
            "row type does not match {}",
            self.table
        );
        match self.backend {
            Backend::Postgres => {
                for value in body_args {
                    args.add(*value)?;
                }
                args.add(serde_json::to_string(rows)?)?;
                Ok(self.text(rows.len()))
            }
            Backend::Sqlite => {
                let size = padded(rows.len());
                for row in rows {
                    row.add_cells(args)?;
                }
                for _ in rows.len()..size {
                    for (_, ty) in &self.columns {
                        add_null(args, *ty)?;
                    }
                }
                for value in body_args {
                    args.add(*value)?;
                }
                Ok(self.text(size))
            }
        }
    }

    fn chunk_rows(&self) -> usize {
        match self.backend {
            Backend::Postgres => usize::MAX,
            Backend::Sqlite => MAX_ROWS,
        }
    }
}

/// Where a statement's results sit in a [`Script`]'s answer: rows too many for one
/// statement take several.
#[derive(Debug, Clone)]
pub(crate) struct Slot(std::ops::Range<usize>);

/// What one statement of a script returned.
#[derive(Default)]
pub(crate) struct Answer {
    /// The rows it selected.
    pub(crate) rows: Vec<AnyRow>,
    /// The rows it inserted, updated or deleted.
    pub(crate) affected: u64,
}

/// The answers to a script, by slot.
pub(crate) struct Answers(Vec<Answer>);

impl Answers {
    /// The rows the statements in `slot` selected.
    pub(crate) fn rows(&mut self, slot: &Slot) -> Vec<AnyRow> {
        let mut rows = Vec::new();
        for answer in self.0.get_mut(slot.0.clone()).into_iter().flatten() {
            rows.append(&mut answer.rows);
        }
        rows
    }

    /// How many rows the statements in `slot` changed.
    pub(crate) fn affected(&self, slot: &Slot) -> u64 {
        self.0
            .get(slot.0.clone())
            .into_iter()
            .flatten()
            .map(|a| a.affected)
            .sum()
    }
}

/// Statements sent together. SQLite receives them as one multi-statement query —
/// one round trip to its connection's thread instead of one per statement, which
/// matters because each trip waits for that thread to be scheduled. PostgreSQL
/// takes one statement per round trip whatever we do, so there they run in turn.
///
/// sqlx's SQLite driver runs a multi-statement text with bound values (binding
/// them in order across the statements) through `Executor::fetch_many`; sqlx has
/// deprecated the `Query::fetch_many` spelling of this (launchbadge/sqlx#3108). If
/// a release drops it, SQLite can take the PostgreSQL path below unchanged.
pub(crate) struct Script {
    backend: Backend,
    parts: Vec<(SqlStr, AnyArguments)>,
    sqlite_text: String,
    sqlite_args: AnyArguments,
    statements: usize,
}

impl Script {
    pub(crate) fn new(backend: Backend) -> Script {
        Script {
            backend,
            parts: Vec::new(),
            sqlite_text: String::new(),
            sqlite_args: AnyArguments::default(),
            statements: 0,
        }
    }

    /// True when nothing was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.statements == 0
    }

    /// Adds `statement` over `rows`; nothing at all when there are no rows.
    pub(crate) fn add<R: Cells>(
        &mut self,
        statement: &RowsStatement,
        body_args: &[i64],
        rows: &[R],
    ) -> Result<Slot, sqlx::Error> {
        let first = self.statements;
        for chunk in rows.chunks(statement.chunk_rows()) {
            match self.backend {
                Backend::Postgres => {
                    let mut args = AnyArguments::default();
                    let text = statement
                        .bind_into(&mut args, body_args, chunk)
                        .map_err(sqlx::Error::Encode)?;
                    self.parts.push((text, args));
                }
                Backend::Sqlite => {
                    let text = statement
                        .bind_into(&mut self.sqlite_args, body_args, chunk)
                        .map_err(sqlx::Error::Encode)?;
                    self.sqlite_text.push_str(text.as_str());
                    self.sqlite_text.push_str(";\n");
                }
            }
            self.statements += 1;
        }
        Ok(Slot(first..self.statements))
    }

    /// Adds a statement of fixed text and values.
    pub(crate) fn add_fixed(
        &mut self,
        text: &'static str,
        values: &[ScriptValue],
    ) -> Result<Slot, sqlx::Error> {
        let first = self.statements;
        let args = match self.backend {
            Backend::Postgres => {
                self.parts
                    .push((text.into_sql_str(), AnyArguments::default()));
                self.parts.last_mut().map(|(_, args)| args)
            }
            Backend::Sqlite => {
                // The fixed texts number their parameters for PostgreSQL.
                let mut plain = text.to_owned();
                for param in (1..=values.len()).rev() {
                    plain = plain.replace(&format!("${param}"), "?");
                }
                self.sqlite_text.push_str(&plain);
                self.sqlite_text.push_str(";\n");
                Some(&mut self.sqlite_args)
            }
        };
        if let Some(args) = args {
            for value in values {
                match value {
                    ScriptValue::Int(value) => args.add(*value),
                    ScriptValue::Text(value) => args.add(value.clone()),
                }
                .map_err(sqlx::Error::Encode)?;
            }
        }
        self.statements += 1;
        Ok(Slot(first..self.statements))
    }

    /// Runs every statement, in order, and returns what each answered.
    pub(crate) async fn run(self, conn: &mut AnyConnection) -> Result<Answers, sqlx::Error> {
        match self.backend {
            Backend::Postgres => {
                let mut answers = Vec::with_capacity(self.parts.len());
                for (text, args) in self.parts {
                    let mut answer = Answer::default();
                    let mut stream = conn.fetch_many(sqlx::query_with(text, args));
                    while let Some(item) = stream.try_next().await? {
                        match item {
                            Either::Left(done) => answer.affected += done.rows_affected(),
                            Either::Right(row) => answer.rows.push(row),
                        }
                    }
                    answers.push(answer);
                }
                Ok(Answers(answers))
            }
            Backend::Sqlite => {
                if self.statements == 0 {
                    return Ok(Answers(Vec::new()));
                }
                let text = AssertSqlSafe(self.sqlite_text).into_sql_str();
                // Kept prepared like any statement: a batch's script is one of a few
                // combinations of statements and padded sizes, and preparing a long
                // `VALUES` list costs more than running it.
                let query = sqlx::query_with(text, self.sqlite_args);
                let mut answers = Vec::with_capacity(self.statements);
                let mut current = Answer::default();
                let mut stream = conn.fetch_many(query);
                while let Some(item) = stream.try_next().await? {
                    match item {
                        Either::Right(row) => current.rows.push(row),
                        // Each statement ends with its result, rows or not.
                        Either::Left(done) => {
                            current.affected = done.rows_affected();
                            answers.push(std::mem::take(&mut current));
                        }
                    }
                }
                if answers.len() == self.statements {
                    Ok(Answers(answers))
                } else {
                    Err(sqlx::Error::Protocol(format!(
                        "a script of {} statements answered {} times",
                        self.statements,
                        answers.len()
                    )))
                }
            }
        }
    }
}

/// A value for [`Script::add_fixed`].
pub(crate) enum ScriptValue {
    Int(i64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_rounds_up_to_powers_of_four() {
        let sizes: Vec<usize> = [1, 2, 4, 5, 16, 17, 64, 65, 256, 257, 1024]
            .into_iter()
            .map(padded)
            .collect();
        assert_eq!(sizes, [1, 4, 4, 16, 16, 64, 64, 256, 256, 1024, 1024]);
        for size in [1usize, 4, 16, 64, 256, 1024] {
            assert!(size.trailing_zeros() as usize / 2 < 6);
        }
    }

    #[test]
    fn scripts_split_rows_beyond_one_statement() {
        let statement = RowsStatement::new(
            Backend::Sqlite,
            "k",
            &[("id", Ty::Text)],
            0,
            "SELECT id FROM k".into(),
        );
        let names: Vec<String> = (0..MAX_ROWS + 1).map(|i| format!("id{i}")).collect();
        let rows: Vec<IdKey<'_>> = names.iter().map(|id| IdKey { id }).collect();
        let mut script = Script::new(Backend::Sqlite);
        let first = script.add(&statement, &[], &rows[..3]).unwrap();
        let second = script.add(&statement, &[], &rows).unwrap();
        assert_eq!((first.0, second.0), (0..1, 1..3));
        assert_eq!(script.statements, 3);
        // 4 + 1,024 + 1 rows after padding, one parameter each.
        assert_eq!(script.sqlite_args.len(), 4 + 1024 + 1);
        assert_eq!(script.sqlite_text.matches("WITH k(id)").count(), 3);
    }

    #[test]
    fn texts_put_body_parameters_where_each_engine_binds_them() {
        let statement = RowsStatement::new(
            Backend::Sqlite,
            "k",
            &[("id", Ty::Text)],
            1,
            "SELECT id FROM mandates WHERE id IN (SELECT id FROM k) AND valid_until_ms > $1".into(),
        );
        assert_eq!(
            statement.sqlite_text(4),
            "WITH k(id) AS (VALUES (?),(?),(?),(?)) SELECT id FROM mandates WHERE id IN (SELECT id FROM k) AND valid_until_ms > ?"
        );
        let statement = RowsStatement {
            backend: Backend::Postgres,
            ..statement
        };
        assert!(
            statement
                .postgres_text()
                .starts_with("WITH k AS (SELECT * FROM json_to_recordset($2::json) AS r(id text))")
        );
    }
}
