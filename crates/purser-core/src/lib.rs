//! Purser's pure rules. No IO, no async, no wall clock: time comes from a [`Clock`]
//! and randomness from the caller, so every rule here is deterministic and tested
//! without a database.
//!
//! - [`batch`]: applying a batch of changes in memory, producing what to persist.
//! - [`change`]: every kind of state change, and the audit record each one leaves.
//! - [`authorize`]: the one authorization decision every payment goes through.
//! - [`mandate`]: validating drafts; a mandate's status and coverage.
//! - [`ledger`]: how a transfer may move money, and the invariants of a ledger.
//! - [`audit`]: the hash chain that makes the audit trail tamper-evident.
//! - [`host`]: host normalization and allowlist matching.
//! - [`clock`]: the injected clock.
//! - [`ids`]: time-ordered 128-bit ids from a clock reading and random bits.

pub mod audit;
pub mod authorize;
pub mod batch;
pub mod change;
pub mod clock;
pub mod host;
pub mod ids;
pub mod ledger;
pub mod mandate;

pub use clock::{Clock, ManualClock, SystemClock};
