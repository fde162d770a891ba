//! Time-ordered 128-bit ids (UUIDv7 layout) from a clock reading and random bits.
//!
//! Time-ordered ids keep B-tree inserts local, which matters for ledger throughput
//! (TigerBeetle's data-modeling notes measure random ids as much slower).

use purser_types::UnixMs;

/// Lays out a UUIDv7: 48 bits of Unix milliseconds, version 7, 74 random bits,
/// RFC 9562 variant.
pub fn uuid_v7_bytes(now: UnixMs, random: [u8; 10]) -> [u8; 16] {
    let millis = u64::try_from(now.millis()).unwrap_or(0).to_be_bytes();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis[2..]);
    bytes[6..].copy_from_slice(&random);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_by_time_and_sets_version_bits() {
        let a = uuid_v7_bytes(UnixMs(1_700_000_000_000), [0xff; 10]);
        let b = uuid_v7_bytes(UnixMs(1_700_000_000_001), [0x00; 10]);
        assert!(a < b);
        assert_eq!(a[6] >> 4, 7);
        assert_eq!(a[8] >> 6, 0b10);
    }
}
