//! Purser's pure rules. No IO, no async, no wall clock: time comes from a [`Clock`]
//! and randomness from the caller, so every rule here is deterministic and tested
//! without a database.
//!
//! - [`batch`]: applying a batch of changes in memory, producing what to persist.
//! - [`change`]: every kind of state change, and the audit record each one leaves.
//! - [`ledger`]: how a transfer may move money, and the invariants of a ledger.
//! - [`audit`]: the hash chain that makes the audit trail tamper-evident.
//! - [`clock`]: the injected clock.
//! - [`ids`]: time-ordered 128-bit ids from a clock reading and random bits.

pub mod audit;
pub mod batch;
pub mod change;
pub mod clock;
pub mod ids;
pub mod ledger;

pub use clock::{Clock, ManualClock, SystemClock};
