//! Reading the audit trail from a running daemon: list and verify.

use keyward_proto::{AuditRecordView, AuditVerifyReport};

use super::Appliance;
use crate::domain::format_ms;
use crate::error::Result;

/// `audit list` returns at most this many records per call.
pub const MAX_AUDIT_LIST: usize = 1000;

impl Appliance {
    pub fn audit_list(&self, from: u64, limit: usize) -> Result<Vec<AuditRecordView>> {
        self.store
            .audit_range(from.max(1), limit.min(MAX_AUDIT_LIST))
            .map(|(_, record)| {
                let r = record?;
                Ok(AuditRecordView {
                    seq: r.body.seq,
                    time: format_ms(r.body.time_ms),
                    actors: r.body.entry.actors,
                    channel: r.body.entry.channel.as_str().into(),
                    action: r.body.entry.action,
                    target: r.body.entry.target,
                    outcome: r.body.entry.outcome.as_str().into(),
                    details: r.body.entry.details,
                    hash: r.hash,
                })
            })
            .collect()
    }

    /// Verifies the whole trail while no record is being appended.
    pub fn audit_verify(&self) -> Result<AuditVerifyReport> {
        let report = self.audit.verify()?;
        Ok(AuditVerifyReport {
            intact: true,
            records: report.records,
            head_seq: report.head.seq,
            head_hash: hex::encode(report.head.hash),
        })
    }
}
