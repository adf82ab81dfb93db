//! The audit trail: append-only, hash-chained, each record MACed by the HSM audit key, and its
//! head kept inside the token as well, so truncation and rollback of the database show.
//!
//! Fail closed: [`AuditTrail::append`] returns only after the record is durable; callers run
//! the action it describes only on `Ok`.

use std::sync::{Arc, Mutex};

use tracing::warn;

use crate::domain::audit::{AuditEntry, AuditRecord, ChainFault, ChainWalker, Head, RecordBody};
use crate::domain::keys::KeyId;
use crate::domain::now_ms;
use crate::hsm::{Hsm, HsmError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit trail cannot be written: {0}")]
    Store(#[from] StoreError),
    #[error("the audit trail cannot be sealed: {0}")]
    Hsm(#[from] HsmError),
    #[error("the audit trail is broken: {0}")]
    Broken(#[from] ChainFault),
}

/// Where the head is kept in the token: one name per audit key, so a token serving an older
/// installation does not confuse this one.
fn anchor_name(key: &KeyId) -> String {
    format!("keyward-audit-head-{key}")
}

/// Removes the head of the trail sealed by `key` from the token (discarding a first boot that
/// did not finish).
pub fn discard_anchor(hsm: &dyn Hsm, key: &KeyId) -> Result<(), HsmError> {
    hsm.remove_anchors(&anchor_name(key))
}

/// The newest head the token holds (two only after an interrupted anchor write).
fn read_anchor(hsm: &dyn Hsm, key: &KeyId) -> Result<Option<Head>, HsmError> {
    let heads = hsm.read_anchors(&anchor_name(key))?;
    Ok(heads
        .iter()
        .filter_map(|raw| serde_json::from_slice::<Head>(raw).ok())
        .max_by_key(|h| h.seq))
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

pub struct AuditTrail {
    store: Store,
    hsm: Arc<dyn Hsm>,
    key: KeyId,
    /// The last record written; appends are serialised on this lock.
    head: Mutex<Head>,
}

/// What a full verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: u64,
    pub head: Head,
    /// The trail ran ahead of the HSM head (an append interrupted before re-anchoring).
    pub beyond_anchor: u64,
}

impl AuditTrail {
    /// Opens the trail and checks its last record against the head kept in the HSM. A trail
    /// one interrupted write ahead of the anchor is re-anchored; a trail behind it is refused.
    pub fn open(store: Store, hsm: Arc<dyn Hsm>, key: KeyId) -> Result<Self, AuditError> {
        let head = match store.last_audit()? {
            None => Head::EMPTY,
            Some((seq, record)) => {
                let hash = record.body.compute_hash();
                if record.hash != hex::encode(hash) || seq != record.body.seq {
                    return Err(ChainFault::HashMismatch { seq }.into());
                }
                let mac = hex::decode(&record.mac).unwrap_or_default();
                if !hsm.hmac_verify(&key, &hash, &mac)? {
                    return Err(ChainFault::BadMac { seq }.into());
                }
                Head { seq, hash }
            }
        };
        let mut walker = ChainWalker::new();
        walker.resume_at(head);
        let anchor = check_against_anchor(&store, hsm.as_ref(), &key, &walker)?;
        let trail = Self {
            store,
            hsm,
            key,
            head: Mutex::new(head),
        };
        if anchor.map_or(0, |a| a.seq) < head.seq {
            warn!(
                head = head.seq,
                "the audit head in the HSM lagged the trail (interrupted write); re-anchoring"
            );
            trail.anchor(head)?;
        }
        Ok(trail)
    }

    fn anchor(&self, head: Head) -> Result<(), HsmError> {
        self.hsm.write_anchor(
            &anchor_name(&self.key),
            &serde_json::to_vec(&head).unwrap_or_default(),
        )
    }

    /// Seals and stores one record, then moves the head in the HSM. Returns its sequence number
    /// once it is durable; on error the caller must not perform the action.
    pub fn append(&self, entry: AuditEntry) -> Result<u64, AuditError> {
        let mut head = self
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seq = head.seq + 1;
        let body = RecordBody::new(seq, now_ms(), &head.hash, entry);
        let hash = body.compute_hash();
        let mac = self.hsm.hmac_sign(&self.key, &hash)?;
        let record = AuditRecord {
            body,
            hash: hex::encode(hash),
            mac: hex::encode(mac),
        };
        self.store.append_audit(&record)?;
        self.store.flush()?;
        // The record is durable: it is the head now, whether or not the anchor follows.
        *head = Head { seq, hash };
        self.anchor(*head)?;
        Ok(seq)
    }

    /// Verifies the whole trail without stalling the appliance: the long walk runs while
    /// appends go on; only the few records appended meanwhile, and the check against the head in
    /// the HSM, happen with appends held back (so the head cannot move under the check).
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        let mut walker = ChainWalker::new();
        walk(&self.store, self.hsm.as_ref(), &self.key, &mut walker)?;
        let _appends = self
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        walk(&self.store, self.hsm.as_ref(), &self.key, &mut walker)?;
        finish(&self.store, self.hsm.as_ref(), &self.key, &walker)
    }

    pub fn head(&self) -> Head {
        *self
            .head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Walks the whole trail: every link, every MAC (in the HSM), and the head kept in the HSM.
/// Offline use (`keywardd audit verify`); a running daemon uses [`AuditTrail::verify`].
pub fn verify(store: &Store, hsm: &dyn Hsm, key: &KeyId) -> Result<VerifyReport, AuditError> {
    let mut walker = ChainWalker::new();
    walk(store, hsm, key, &mut walker)?;
    finish(store, hsm, key, &walker)
}

/// Checks every record after the walker's head, in order, and advances it.
fn walk(
    store: &Store,
    hsm: &dyn Hsm,
    key: &KeyId,
    walker: &mut ChainWalker,
) -> Result<(), AuditError> {
    for (seq, record) in store.audit_range(walker.head().seq + 1, usize::MAX) {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                return Err(ChainFault::Unreadable {
                    seq: walker.head().seq + 1,
                    reason: e.to_string(),
                }
                .into());
            }
        };
        walker.step(seq, &record, |hash, mac| hsm.hmac_verify(key, hash, mac))??;
    }
    Ok(())
}

/// Checks the trail up to the walker's head against the head kept in the HSM; returns that
/// anchor.
fn check_against_anchor(
    store: &Store,
    hsm: &dyn Hsm,
    key: &KeyId,
    walker: &ChainWalker,
) -> Result<Option<Head>, AuditError> {
    let anchor = read_anchor(hsm, key)?;
    let hash_at_anchor = match anchor {
        Some(a) if a.seq > 0 && a.seq <= walker.head().seq => {
            store.get_audit(a.seq)?.and_then(|r| parse_hash(&r.hash))
        }
        _ => None,
    };
    walker.check_anchor(anchor, hash_at_anchor)?;
    Ok(anchor)
}

/// The report of a walk that linked all the way, checked against the HSM head.
fn finish(
    store: &Store,
    hsm: &dyn Hsm,
    key: &KeyId,
    walker: &ChainWalker,
) -> Result<VerifyReport, AuditError> {
    let anchor = check_against_anchor(store, hsm, key, walker)?;
    Ok(VerifyReport {
        records: walker.count(),
        head: walker.head(),
        beyond_anchor: walker.head().seq - anchor.map_or(0, |a| a.seq),
    })
}
