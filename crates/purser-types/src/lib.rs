//! Purser's shared vocabulary: money, identifiers, stable error codes, secrets and
//! the records every layer talks about.
//!
//! This crate does no IO and knows nothing of HTTP, SQL or MCP. Every other crate
//! depends on it; it depends on none of them.

pub mod error;
pub mod ids;
pub mod money;
pub mod payments;
pub mod records;
pub mod secret;
pub mod time;

pub use error::ErrorCode;
pub use ids::{
    AgentId, ApprovalId, IdError, MandateId, PayoutId, ReservationId, TransferId, WalletId,
};
pub use money::{AmountError, Currency, Usdc};
pub use payments::*;
pub use records::*;
pub use secret::Secret;
pub use time::UnixMs;
