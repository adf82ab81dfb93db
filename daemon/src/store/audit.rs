//! The audit tree: sealed records keyed by big-endian sequence number, so iteration order is
//! sequence order. Appending never overwrites: an existing sequence number is a conflict.

use super::{Store, StoreError, StoreResult, decode, encode};
use crate::domain::audit::AuditRecord;

impl Store {
    /// Stores a sealed record under its sequence number, refusing to replace one.
    pub fn append_audit(&self, record: &AuditRecord) -> StoreResult<()> {
        let key = record.body.seq.to_be_bytes();
        let prior = self
            .audit
            .compare_and_swap(key, None::<&[u8]>, Some(encode(record)))?;
        prior.map_err(|_| {
            StoreError::Conflict(format!("audit record {} already exists", record.body.seq))
        })
    }

    /// The last record by sequence, if any.
    pub fn last_audit(&self) -> StoreResult<Option<(u64, AuditRecord)>> {
        self.audit
            .last()?
            .map(|(k, v)| Ok((seq_of(&k)?, decode("audit", &k, &v)?)))
            .transpose()
    }

    pub fn get_audit(&self, seq: u64) -> StoreResult<Option<AuditRecord>> {
        self.audit
            .get(seq.to_be_bytes())?
            .map(|v| decode("audit", &seq.to_be_bytes(), &v))
            .transpose()
    }

    /// Records from `from` on, at most `limit`, each with the sequence it is stored under.
    /// A record that does not decode is returned as an error in place, so verification can
    /// name it rather than stop.
    pub fn audit_range(
        &self,
        from: u64,
        limit: usize,
    ) -> impl Iterator<Item = (u64, StoreResult<AuditRecord>)> + '_ {
        self.audit
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|item| match item {
                Ok((k, v)) => match seq_of(&k) {
                    Ok(seq) => (seq, decode("audit", &k, &v)),
                    Err(e) => (0, Err(e)),
                },
                Err(e) => (0, Err(e.into())),
            })
    }

    pub fn audit_len(&self) -> usize {
        self.audit.len()
    }
}

fn seq_of(key: &[u8]) -> StoreResult<u64> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            tree: "audit",
            key: hex::encode(key),
            reason: "key is not an 8-byte sequence number".into(),
        })
}
