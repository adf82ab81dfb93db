//! Audit: the trail as `audit_list` gives it, newest last. The console first asks for the last
//! page (from the head the status gave), then older pages as the selection reaches the top,
//! and newer ones on `r`. `/` filters the records fetched so far by actor, action, target or
//! time; `v` asks the daemon to verify the whole chain; Enter shows one record in full.

use keyward_proto::{ApiError, AuditRecordView, AuditVerifyReport, ErrorCode, Request};

use super::{App, Effect, Info, Purpose};
use crate::keys::Action;

/// Records asked for at a time.
pub const AUDIT_PAGE: usize = 100;

#[derive(Debug, Default)]
pub struct Audit {
    /// Ascending by sequence number, without gaps.
    pub records: Vec<AuditRecordView>,
    pub loaded: bool,
    /// The selected record's sequence number; `None` follows the newest shown.
    pub selected: Option<u64>,
    pub filter: String,
    pub filtering: bool,
    /// Waiting for the status (for the head) before asking for the last page.
    want_tail: bool,
}

impl Audit {
    /// The records the filter lets through, oldest first.
    pub fn visible(&self) -> Vec<&AuditRecordView> {
        let needle = self.filter.to_lowercase();
        self.records
            .iter()
            .filter(|r| {
                needle.is_empty()
                    || r.actors.iter().any(|a| a.to_lowercase().contains(&needle))
                    || [&r.action, &r.target, &r.time]
                        .iter()
                        .any(|field| field.to_lowercase().contains(&needle))
            })
            .collect()
    }

    /// Where the selection is in [`Audit::visible`].
    pub fn selected_index(&self) -> Option<usize> {
        let visible = self.visible();
        let last = visible.len().checked_sub(1)?;
        Some(
            self.selected
                .and_then(|seq| visible.iter().position(|r| r.seq == seq))
                .unwrap_or(last),
        )
    }

    pub fn selected_record(&self) -> Option<&AuditRecordView> {
        let index = self.selected_index()?;
        self.visible().get(index).copied()
    }

    pub fn first_seq(&self) -> Option<u64> {
        self.records.first().map(|r| r.seq)
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.records.last().map(|r| r.seq)
    }

    /// Whether the oldest record is fetched (nothing older to ask for).
    pub fn has_first(&self) -> bool {
        self.first_seq().is_none_or(|seq| seq <= 1)
    }

    /// Adds fetched records, keeping them in order and once each.
    fn merge(&mut self, records: Vec<AuditRecordView>) {
        self.records.extend(records);
        self.records.sort_by_key(|r| r.seq);
        self.records.dedup_by_key(|r| r.seq);
    }
}

impl App {
    /// The last page: from the head the status reported; without a status, it is asked
    /// first.
    pub(super) fn audit_load(&mut self, out: &mut Vec<Effect>) {
        if let Some(last) = self.audit.last_seq() {
            self.audit_newer(last + 1, out);
            return;
        }
        match &self.status {
            Some(status) => {
                let head = status.audit.head_seq;
                let from = head.saturating_sub(AUDIT_PAGE as u64 - 1).max(1);
                self.audit_newer(from, out);
            }
            None => {
                self.audit.want_tail = true;
                self.send_once(Purpose::Status, Request::Status, out);
            }
        }
    }

    /// After a status answer: the last page, if the audit screen was waiting for it.
    pub(super) fn audit_status_arrived(&mut self, out: &mut Vec<Effect>) {
        if std::mem::take(&mut self.audit.want_tail) && self.status.is_some() {
            self.audit_load(out);
        }
    }

    fn audit_newer(&mut self, from: u64, out: &mut Vec<Effect>) {
        self.send_once(
            Purpose::AuditNewer,
            Request::AuditList {
                from: Some(from),
                limit: Some(AUDIT_PAGE),
            },
            out,
        );
    }

    /// When the selection reaches the top of what is fetched, the page before it.
    fn audit_older_if_needed(&mut self, out: &mut Vec<Effect>) {
        if self.audit.selected_index() != Some(0) || self.audit.has_first() {
            return;
        }
        let Some(first) = self.audit.first_seq() else {
            return;
        };
        let from = first.saturating_sub(AUDIT_PAGE as u64).max(1);
        let limit = usize::try_from(first - from).unwrap_or(AUDIT_PAGE);
        self.send_once(
            Purpose::AuditOlder,
            Request::AuditList {
                from: Some(from),
                limit: Some(limit),
            },
            out,
        );
    }

    pub(super) fn audit_action(&mut self, action: Action, out: &mut Vec<Effect>) {
        let audit = &mut self.audit;
        if audit.filtering {
            match action {
                Action::Input(c) => audit.filter.push(c),
                Action::Backspace => {
                    audit.filter.pop();
                }
                Action::ClearInput => audit.filter.clear(),
                Action::Open => audit.filtering = false,
                _ => {}
            }
            return;
        }
        let visible: Vec<u64> = audit.visible().iter().map(|r| r.seq).collect();
        let last = visible.len().saturating_sub(1);
        let at = audit.selected_index().unwrap_or(0);
        let to = match action {
            Action::Up => Some(at.saturating_sub(1)),
            Action::Down => Some((at + 1).min(last)),
            Action::PageUp => Some(at.saturating_sub(10)),
            Action::PageDown => Some((at + 10).min(last)),
            Action::Top => Some(0),
            Action::Bottom => None,
            _ => Some(at),
        };
        match action {
            Action::Up | Action::Down | Action::PageUp | Action::PageDown | Action::Top => {
                // The newest record selected means following the newest again.
                audit.selected = to
                    .filter(|i| *i < last)
                    .and_then(|i| visible.get(i).copied());
                self.audit_older_if_needed(out);
            }
            Action::Bottom => audit.selected = None,
            Action::Filter => audit.filtering = true,
            Action::Open => {
                if let Some(record) = audit.selected_record() {
                    self.info = Some(record_info(record));
                }
            }
            Action::Verify => {
                self.send_once(Purpose::AuditVerify, Request::AuditVerify, out);
                self.notice = Some("Verifying the audit trail …".into());
            }
            _ => {}
        }
    }

    pub(super) fn audit_reply(
        &mut self,
        purpose: Purpose,
        data: serde_json::Value,
        out: &mut Vec<Effect>,
    ) {
        match purpose {
            Purpose::AuditNewer | Purpose::AuditOlder => {
                if let Some(records) = self.parse::<Vec<AuditRecordView>>(purpose, data) {
                    let full = records.len() >= AUDIT_PAGE;
                    self.audit.merge(records);
                    self.audit.loaded = true;
                    // A full page of newer records: there may be more since the head we knew.
                    if purpose == Purpose::AuditNewer && full {
                        if let Some(last) = self.audit.last_seq() {
                            self.audit_newer(last + 1, out);
                        }
                    }
                }
            }
            Purpose::AuditVerify => {
                if let Some(report) = self.parse::<AuditVerifyReport>(purpose, data) {
                    self.notice = None;
                    self.info = Some(verify_info(&report));
                }
            }
            _ => {}
        }
    }

    /// An `audit` error from `audit_verify` (the chain is broken): shown in the dialog, with
    /// the record it names, rather than as a passing error line.
    pub(super) fn audit_verify_failed(&mut self, error: &ApiError) -> bool {
        if error.code != ErrorCode::Audit {
            return false;
        }
        self.notice = None;
        self.info = Some(Info {
            title: "Audit trail: NOT intact".into(),
            lines: vec![
                (String::new(), format!("{}: {}", error.code.as_str(), error.message)),
                (String::new(), String::new()),
                (
                    String::new(),
                    "Records after the one named cannot be trusted; keep the store for investigation."
                        .into(),
                ),
            ],
            scroll: 0,
            bad: true,
        });
        true
    }
}

fn verify_info(report: &AuditVerifyReport) -> Info {
    let short: String = report.head_hash.chars().take(16).collect();
    let verdict = if report.intact {
        "intact"
    } else {
        "NOT intact"
    };
    Info {
        title: format!("Audit trail: {verdict}"),
        lines: vec![
            (
                String::new(),
                format!(
                    "{verdict}: {} records, head #{} {short}…",
                    report.records, report.head_seq
                ),
            ),
            (String::new(), String::new()),
            (String::new(), "Head hash:".into()),
            (String::new(), report.head_hash.clone()),
            (String::new(), String::new()),
            (
                String::new(),
                "Compare the head hash with one noted earlier (Status › Audit head).".into(),
            ),
        ],
        scroll: 0,
        bad: !report.intact,
    }
}

fn record_info(r: &AuditRecordView) -> Info {
    let mut lines = vec![
        ("Time".to_string(), r.time.clone()),
        ("Actors".into(), r.actors.join(", ")),
        ("Channel".into(), r.channel.clone()),
        ("Action".into(), r.action.clone()),
        ("Target".into(), r.target.clone()),
        ("Outcome".into(), r.outcome.clone()),
    ];
    if r.details.is_empty() {
        lines.push(("Details".into(), "none".into()));
    } else {
        for (i, (k, v)) in r.details.iter().enumerate() {
            let label = if i == 0 { "Details" } else { "" };
            lines.push((label.into(), format!("{k} = {v}")));
        }
    }
    lines.push(("Hash".into(), r.hash.clone()));
    Info {
        title: format!("Audit record #{}", r.seq),
        lines,
        scroll: 0,
        bad: false,
    }
}
