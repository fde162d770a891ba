//! The audit trail's hash chain.
//!
//! Record `n` stores `hash_n = SHA-256(domain ‖ seq ‖ at ‖ actor ‖ action ‖ wallet ‖
//! subject ‖ details ‖ hash_{n-1})`, each variable-length field prefixed with its
//! length so no two different records encode alike. The store also keeps the head
//! (last seq and hash) in its own row. [`ChainVerifier`] walks the records in
//! order and names the first one that was edited, deleted or moved.

use purser_types::{AuditEvent, AuditRecord, Hash32, UnixMs};
use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"purser-audit-v1";

/// The hash of a record with these fields, chained to `prev_hash`.
pub fn record_hash(seq: u64, at: UnixMs, event: &AuditEvent, prev_hash: &Hash32) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(seq.to_be_bytes());
    hasher.update(at.millis().to_be_bytes());
    let wallet = event.wallet_id.map(|w| w.to_string()).unwrap_or_default();
    for field in [
        event.actor.to_string().as_str(),
        event.action.as_str(),
        wallet.as_str(),
        event.subject.as_str(),
        event.details.as_str(),
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.update(prev_hash.0);
    Hash32(hasher.finalize().into())
}

/// Appends records to a chain whose head is known, in memory, before they are
/// written in the same transaction as the change they describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// The seq of the last record (0 for an empty chain).
    pub seq: u64,
    /// The hash of the last record ([`Hash32::GENESIS`] for an empty chain).
    pub hash: Hash32,
}

impl ChainHead {
    /// The head of an empty chain.
    pub const EMPTY: ChainHead = ChainHead {
        seq: 0,
        hash: Hash32::GENESIS,
    };

    /// Chains `event` after this head and moves the head to it.
    pub fn append(&mut self, at: UnixMs, event: AuditEvent) -> AuditRecord {
        let seq = self.seq.saturating_add(1);
        let hash = record_hash(seq, at, &event, &self.hash);
        let record = AuditRecord {
            seq,
            at,
            event,
            prev_hash: self.hash,
            hash,
        };
        *self = ChainHead { seq, hash };
        record
    }
}

/// Where and how a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The record's contents no longer match its hash: it was edited.
    #[error("audit record {seq} was edited: its hash does not match its contents")]
    Edited {
        /// The record.
        seq: u64,
    },
    /// The record does not point at the one before it: records were removed or
    /// moved around it.
    #[error("audit record {seq} does not follow record {prev}: records were deleted or reordered")]
    BrokenLink {
        /// The record.
        seq: u64,
        /// The record before it.
        prev: u64,
    },
    /// A sequence number is missing.
    #[error(
        "audit record {expected} is missing (the next record is {found}): records were deleted"
    )]
    Missing {
        /// The seq that should come next.
        expected: u64,
        /// The seq that came instead.
        found: u64,
    },
    /// The chain stops before the head the store recorded.
    #[error(
        "the audit chain ends at record {last} but the head is record {head}: records were deleted at the end"
    )]
    Truncated {
        /// The last record present.
        last: u64,
        /// The head's seq.
        head: u64,
    },
    /// The last record is not the head the store recorded.
    #[error("the audit chain's last record {seq} is not the recorded head")]
    HeadMismatch {
        /// The last record.
        seq: u64,
    },
}

/// Verifies a chain one record at a time, so a long chain streams from storage.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: ChainHead,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            head: ChainHead::EMPTY,
        }
    }
}

impl ChainVerifier {
    /// A verifier that continues after `head`, a prefix of the chain already verified.
    pub fn resume(head: ChainHead) -> Self {
        Self { head }
    }

    /// Checks the next record, in seq order.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        let expected = self.head.seq.saturating_add(1);
        if record.seq > expected {
            return Err(ChainBreak::Missing {
                expected,
                found: record.seq,
            });
        }
        if record.seq < expected {
            return Err(ChainBreak::BrokenLink {
                seq: record.seq,
                prev: self.head.seq,
            });
        }
        if record_hash(record.seq, record.at, &record.event, &record.prev_hash) != record.hash {
            return Err(ChainBreak::Edited { seq: record.seq });
        }
        if record.prev_hash != self.head.hash {
            return Err(ChainBreak::BrokenLink {
                seq: record.seq,
                prev: self.head.seq,
            });
        }
        self.head = ChainHead {
            seq: record.seq,
            hash: record.hash,
        };
        Ok(())
    }

    /// Checks that the chain ended where the store's head says it does.
    pub fn finish(self, recorded_head: ChainHead) -> Result<ChainHead, ChainBreak> {
        if self.head.seq < recorded_head.seq {
            return Err(ChainBreak::Truncated {
                last: self.head.seq,
                head: recorded_head.seq,
            });
        }
        if self.head != recorded_head {
            return Err(ChainBreak::HeadMismatch { seq: self.head.seq });
        }
        Ok(self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use purser_types::{Actor, WalletId};

    fn chain(n: u64) -> (Vec<AuditRecord>, ChainHead) {
        let mut head = ChainHead::EMPTY;
        let wallet = WalletId::from_bytes([3; 16]);
        let records = (0..n)
            .map(|i| {
                let event = AuditEvent {
                    actor: Actor::Owner(wallet),
                    action: "wallet.funded".into(),
                    wallet_id: Some(wallet),
                    subject: format!("tr_{i}"),
                    details: format!("{{\"amount\":\"{i}\"}}"),
                };
                head.append(UnixMs(1_000 + i64::try_from(i).unwrap()), event)
            })
            .collect();
        (records, head)
    }

    fn verify(records: &[AuditRecord], head: ChainHead) -> Result<ChainHead, ChainBreak> {
        let mut verifier = ChainVerifier::default();
        records.iter().try_for_each(|r| verifier.push(r))?;
        verifier.finish(head)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (records, head) = chain(5);
        assert_eq!(verify(&records, head), Ok(head));
        assert_eq!(verify(&[], ChainHead::EMPTY), Ok(ChainHead::EMPTY));
    }

    #[test]
    fn names_the_edited_record() {
        let (mut records, head) = chain(5);
        records[2].event.details = "{\"amount\":\"999\"}".into();
        assert_eq!(verify(&records, head), Err(ChainBreak::Edited { seq: 3 }));
        let (mut records, head) = chain(5);
        records[1].event.actor = Actor::System;
        assert_eq!(verify(&records, head), Err(ChainBreak::Edited { seq: 2 }));
    }

    #[test]
    fn names_the_deleted_record() {
        let (mut records, head) = chain(5);
        records.remove(2);
        assert_eq!(
            verify(&records, head),
            Err(ChainBreak::Missing {
                expected: 3,
                found: 4
            })
        );
        let (mut records, head) = chain(5);
        records.pop();
        assert_eq!(
            verify(&records, head),
            Err(ChainBreak::Truncated { last: 4, head: 5 })
        );
    }

    #[test]
    fn names_reordered_records() {
        // Swapping two records' contents while keeping seq order breaks the links.
        let (mut records, head) = chain(5);
        let (a, b) = (records[1].clone(), records[2].clone());
        records[1] = AuditRecord { seq: 2, ..b };
        records[2] = AuditRecord { seq: 3, ..a };
        assert!(matches!(
            verify(&records, head),
            Err(ChainBreak::Edited { seq: 2 })
        ));
        // Re-hashing the moved records to hide the edit still breaks the link.
        let (mut records, head) = chain(5);
        records.swap(1, 2);
        let (s1, s2) = (records[1].seq, records[2].seq);
        records[1].seq = s2;
        records[2].seq = s1;
        for r in &mut records[1..3] {
            r.hash = record_hash(r.seq, r.at, &r.event, &r.prev_hash);
        }
        assert_eq!(
            verify(&records, head),
            Err(ChainBreak::BrokenLink { seq: 2, prev: 1 })
        );
    }
}
