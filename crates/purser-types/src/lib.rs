//! Purser's shared vocabulary: money, identifiers, stable error codes, secrets and
//! the records every layer talks about.
//!
//! This crate does no IO and knows nothing of HTTP, SQL or MCP. Every other crate
//! depends on it; it depends on none of them.

pub mod error;
pub mod ids;
pub mod links;
pub mod money;
pub mod payments;
pub mod records;
pub mod secret;
pub mod time;
pub mod x402;

pub use error::ErrorCode;
pub use ids::{
    AgentId, ApprovalId, IdError, MandateId, PaymentLinkId, PayoutId, ReceivedPaymentId, RefundId,
    ReservationId, TransferId, WalletId, WebhookEventId,
};
pub use links::*;
pub use money::{AmountError, Currency, Usdc};
pub use payments::*;
pub use records::*;
pub use secret::Secret;
pub use time::UnixMs;

/// Writes `bytes` as lowercase hex in one call: ids and hashes are formatted on
/// every stored row, and byte-by-byte `{:02x}` formatting showed up in profiles.
fn write_hex(f: &mut std::fmt::Formatter<'_>, bytes: &[u8]) -> std::fmt::Result {
    let mut buffer = [0u8; 64];
    for chunk in bytes.chunks(32) {
        let out = buffer.get_mut(..chunk.len() * 2).ok_or(std::fmt::Error)?;
        hex::encode_to_slice(chunk, out).map_err(|_| std::fmt::Error)?;
        f.write_str(std::str::from_utf8(out).map_err(|_| std::fmt::Error)?)?;
    }
    Ok(())
}
