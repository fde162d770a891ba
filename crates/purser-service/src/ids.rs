//! New ids: time-ordered (UUIDv7 layout) from the injected clock and OS randomness.

use purser_core::Clock;
use purser_core::ids::uuid_v7_bytes;
use purser_signer::random_bytes;

use crate::ServiceError;

/// 128 fresh id bits.
pub(crate) fn new_id_bytes(clock: &dyn Clock) -> Result<[u8; 16], ServiceError> {
    Ok(uuid_v7_bytes(clock.now(), random_bytes()?))
}
