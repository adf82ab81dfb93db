//! The audit record format and the rules of the hash chain.
//!
//! Each record's `hash` is SHA-256 over the previous record's hash and the canonical JSON of
//! its body; its `mac` is HMAC-SHA256 over that hash, made inside the HSM with the audit key.
//! Editing a record breaks its hash; re-chaining after an edit needs the HSM to re-MAC.

use std::collections::BTreeMap;

use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};

pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Where an action came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// The `keywardd` command line (init, verify) at the appliance.
    Cli,
    /// The daemon itself (start, stop, reconciliation, scheduler).
    System,
    Console,
    Serial,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Written before a sensitive operation acts.
    Attempt,
    Success,
    Failure,
    /// An observation, not an operation (e.g. a key missing from the HSM).
    Notice,
}

/// What a caller asks to be recorded. Never put a secret in any field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub actors: Vec<String>,
    pub channel: Channel,
    pub action: String,
    pub target: String,
    pub outcome: Outcome,
    pub details: BTreeMap<String, String>,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::System => "system",
            Self::Console => "console",
            Self::Serial => "serial",
        }
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attempt => "attempt",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Notice => "notice",
        }
    }
}

impl AuditEntry {
    pub fn new(
        channel: Channel,
        action: impl Into<String>,
        target: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        Self {
            actors: Vec::new(),
            channel,
            action: action.into(),
            target: target.into(),
            outcome,
            details: BTreeMap::new(),
        }
    }
    pub fn actors<I: IntoIterator<Item = S>, S: Into<String>>(mut self, actors: I) -> Self {
        self.actors = actors.into_iter().map(Into::into).collect();
        self
    }
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }
}

/// Who performs an operation, from where: every audit record names them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actors {
    pub names: Vec<String>,
    pub channel: Channel,
    /// The approval that satisfied dual control, if it was not two logins on one session.
    pub approval: Option<u64>,
}

impl Actors {
    pub fn new(names: Vec<String>, channel: Channel) -> Self {
        Self {
            names,
            channel,
            approval: None,
        }
    }

    /// An audit entry for an action by these actors.
    pub fn entry(&self, action: &str, target: &str, outcome: Outcome) -> AuditEntry {
        let entry =
            AuditEntry::new(self.channel, action, target, outcome).actors(self.names.clone());
        match self.approval {
            Some(id) => entry.detail("approval", id.to_string()),
            None => entry,
        }
    }
}

/// The hashed part of a record. Field order is the canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBody {
    pub seq: u64,
    pub time_ms: u64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// Hex SHA-256 of the previous record (zeros for the first).
    pub prev_hash: String,
}

/// A sealed record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    #[serde(flatten)]
    pub body: RecordBody,
    /// Hex SHA-256 of `prev_hash || canonical(body)`.
    pub hash: String,
    /// Hex HMAC-SHA256 over the raw hash, by the HSM audit key.
    pub mac: String,
}

impl RecordBody {
    pub fn new(seq: u64, time_ms: u64, prev_hash: &[u8; 32], entry: AuditEntry) -> Self {
        Self {
            seq,
            time_ms,
            entry,
            prev_hash: hex::encode(prev_hash),
        }
    }

    /// SHA-256 over the previous hash and the canonical JSON of this body.
    pub fn compute_hash(&self) -> [u8; 32] {
        let mut input = Vec::with_capacity(256);
        input.extend_from_slice(self.prev_hash.as_bytes());
        input.push(b'\n');
        // Serialising a struct of strings, integers, enums and a BTreeMap cannot fail.
        input.extend_from_slice(&serde_json::to_vec(self).unwrap_or_default());
        let d = digest(&SHA256, &input);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }
}

/// The head of the trail: what is kept in a second place (inside the HSM) against truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    #[serde(with = "hex_32")]
    pub hash: [u8; 32],
}

impl Head {
    pub const EMPTY: Head = Head {
        seq: 0,
        hash: GENESIS_HASH,
    };
}

mod hex_32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let raw = hex::decode(text).map_err(D::Error::custom)?;
        raw.try_into()
            .map_err(|_| D::Error::custom("expected 32 bytes"))
    }
}

/// Why verification stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainFault {
    #[error(
        "record {seq}: stored under sequence {key} but says {seq_in_body}: records were reordered or moved"
    )]
    Misplaced {
        seq: u64,
        key: u64,
        seq_in_body: u64,
    },
    #[error("record {seq} is missing: the trail jumps from {prev} to {next}")]
    Gap { seq: u64, prev: u64, next: u64 },
    #[error("record {seq}: its hash does not match its contents: the record was modified")]
    HashMismatch { seq: u64 },
    #[error(
        "record {seq}: it does not chain to record {prev}: a record before it was changed, removed or reordered"
    )]
    BrokenChain { seq: u64, prev: u64 },
    #[error(
        "record {seq}: its MAC is not the HSM audit key's: the record was forged or re-sealed without the HSM"
    )]
    BadMac { seq: u64 },
    #[error("record {seq} cannot be read: {reason}")]
    Unreadable { seq: u64, reason: String },
    #[error(
        "record {seq} is missing: the trail ends at {last} but the head kept in the HSM is {head}: the tail was truncated"
    )]
    Truncated { seq: u64, last: u64, head: u64 },
    #[error("record {seq}: it differs from the head kept in the HSM: the trail was rewritten")]
    HeadMismatch { seq: u64 },
    #[error(
        "the HSM holds no audit head for this trail of {last} records: the token was replaced or wiped, or the head was deleted"
    )]
    AnchorMissing { last: u64 },
}

impl ChainFault {
    /// The first sequence number that is bad.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Misplaced { seq, .. }
            | Self::Gap { seq, .. }
            | Self::HashMismatch { seq }
            | Self::BrokenChain { seq, .. }
            | Self::BadMac { seq }
            | Self::Unreadable { seq, .. }
            | Self::Truncated { seq, .. }
            | Self::HeadMismatch { seq } => *seq,
            Self::AnchorMissing { last } => *last,
        }
    }
}

/// Walks records in storage order and checks the chain. `mac_ok` asks the HSM about one record.
/// Returns the head (last record) when everything links.
pub struct ChainWalker {
    head: Head,
    count: u64,
}

impl Default for ChainWalker {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainWalker {
    pub fn new() -> Self {
        Self {
            head: Head::EMPTY,
            count: 0,
        }
    }

    /// Checks the next record, stored under `key`. `mac_ok(hash, mac)` is the HSM's verdict.
    pub fn step<E>(
        &mut self,
        key: u64,
        record: &AuditRecord,
        mac_ok: impl FnOnce(&[u8; 32], &[u8]) -> Result<bool, E>,
    ) -> Result<Result<(), ChainFault>, E> {
        let expected = self.head.seq + 1;
        if key != expected {
            return Ok(Err(ChainFault::Gap {
                seq: expected,
                prev: self.head.seq,
                next: key,
            }));
        }
        if record.body.seq != key {
            return Ok(Err(ChainFault::Misplaced {
                seq: key,
                key,
                seq_in_body: record.body.seq,
            }));
        }
        let hash = record.body.compute_hash();
        if hex::encode(hash) != record.hash {
            return Ok(Err(ChainFault::HashMismatch { seq: key }));
        }
        if record.body.prev_hash != hex::encode(self.head.hash) {
            return Ok(Err(ChainFault::BrokenChain {
                seq: key,
                prev: self.head.seq,
            }));
        }
        let mac = hex::decode(&record.mac).unwrap_or_default();
        if !mac_ok(&hash, &mac)? {
            return Ok(Err(ChainFault::BadMac { seq: key }));
        }
        self.head = Head { seq: key, hash };
        self.count += 1;
        Ok(Ok(()))
    }

    pub fn head(&self) -> Head {
        self.head
    }

    /// Starts from a head already checked (opening a trail checks only its tail).
    pub fn resume_at(&mut self, head: Head) {
        self.head = head;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Checks the walked trail against the head kept in the HSM. The trail may run ahead of the
    /// anchor (an append that crashed before re-anchoring); it may never fall behind it.
    pub fn check_anchor(
        &self,
        anchor: Option<Head>,
        hash_at_anchor: Option<[u8; 32]>,
    ) -> Result<(), ChainFault> {
        let Some(anchor) = anchor else {
            return if self.head.seq == 0 {
                Ok(())
            } else {
                Err(ChainFault::AnchorMissing {
                    last: self.head.seq,
                })
            };
        };
        if anchor.seq > self.head.seq {
            return Err(ChainFault::Truncated {
                seq: self.head.seq + 1,
                last: self.head.seq,
                head: anchor.seq,
            });
        }
        if anchor.seq > 0 && hash_at_anchor != Some(anchor.hash) {
            return Err(ChainFault::HeadMismatch { seq: anchor.seq });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in MAC for unit tests of the chain rules; the real one is in the HSM.
    fn seal(body: RecordBody) -> AuditRecord {
        let hash = body.compute_hash();
        AuditRecord {
            body,
            hash: hex::encode(hash),
            mac: hex::encode(&hash[..8]),
        }
    }

    fn mac_ok(hash: &[u8; 32], mac: &[u8]) -> Result<bool, ()> {
        Ok(mac == &hash[..8])
    }

    fn trail(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH;
        (1..=n)
            .map(|seq| {
                let entry =
                    AuditEntry::new(Channel::System, "test", format!("t{seq}"), Outcome::Notice);
                let r = seal(RecordBody::new(seq, 1000 + seq, &prev, entry));
                prev = r.body.compute_hash();
                r
            })
            .collect()
    }

    fn walk(records: &[(u64, AuditRecord)]) -> Result<ChainWalker, ChainFault> {
        let mut w = ChainWalker::new();
        for (k, r) in records {
            w.step(*k, r, mac_ok).unwrap()?;
        }
        Ok(w)
    }

    fn keyed(v: Vec<AuditRecord>) -> Vec<(u64, AuditRecord)> {
        v.into_iter().map(|r| (r.body.seq, r)).collect()
    }

    #[test]
    fn intact_trail_verifies_to_its_head() {
        let t = keyed(trail(5));
        let w = walk(&t).unwrap();
        assert_eq!(w.count(), 5);
        assert_eq!(hex::encode(w.head().hash), t[4].1.hash);
        assert!(w.check_anchor(Some(w.head()), Some(w.head().hash)).is_ok());
        assert_eq!(
            w.check_anchor(None, None),
            Err(ChainFault::AnchorMissing { last: 5 })
        );
    }

    #[test]
    fn each_kind_of_tampering_names_the_first_bad_record() {
        let mut modified = keyed(trail(5));
        modified[2].1.body.entry.target = "edited".into();
        assert_eq!(walk(&modified).err().map(|e| e.seq()), Some(3));

        let mut deleted = keyed(trail(5));
        deleted.remove(1);
        assert_eq!(walk(&deleted).err().map(|e| e.seq()), Some(2));

        let mut reordered = keyed(trail(5));
        let (a, b) = (reordered[1].1.clone(), reordered[2].1.clone());
        reordered[1].1 = b;
        reordered[2].1 = a;
        assert_eq!(walk(&reordered).err().map(|e| e.seq()), Some(2));

        let t = keyed(trail(5));
        let w = walk(&t[..3]).unwrap();
        let anchor = Head {
            seq: 5,
            hash: [1; 32],
        };
        assert_eq!(
            w.check_anchor(Some(anchor), None).err().map(|e| e.seq()),
            Some(4)
        );
    }

    #[test]
    fn forged_record_without_the_key_fails_on_mac() {
        let mut t = trail(3);
        // Rewrite record 2 and re-chain everything after it, as an attacker without the HSM can.
        t[1].body.entry.target = "forged".into();
        let mut prev = t[0].body.compute_hash();
        for r in t.iter_mut().skip(1) {
            r.body.prev_hash = hex::encode(prev);
            let hash = r.body.compute_hash();
            r.hash = hex::encode(hash);
            r.mac = hex::encode([0u8; 32]);
            prev = hash;
        }
        assert_eq!(walk(&keyed(t)).err(), Some(ChainFault::BadMac { seq: 2 }));
    }
}
