//! Audit: the trail as `audit_list` gives it, newest last. The console first asks for the last
//! page (from the head the status gave), then older pages as the selection reaches the top,
//! and newer ones on `r`. `/` filters the records fetched so far by actor, action, target or
//! time; `v` asks the daemon to verify the whole chain; Enter shows one record in full.

use keyward_proto::{ApiError, AuditRecordView, AuditVerifyReport, ErrorCode, Op, Reply, Request};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row};

use super::{Filter, Screen, Tab, move_selection};
use crate::app::dialogs::Info;
use crate::app::{Purpose, Shell};
use crate::keys::{Action, ENTER, Keymap, MOVE, b, ch, filter, filter_keys, refresh};
use crate::theme::Theme;
use crate::ui::{filtered_pane, note, table};

/// Records asked for at a time.
pub const AUDIT_PAGE: usize = 100;

/// `audit_list` for records after the last fetched (or the last page).
pub const NEWER: Purpose = Purpose::new(Op::AuditList);
/// `audit_list` for the page before the first fetched.
pub const OLDER: Purpose = Purpose::new(Op::AuditList).tag(1);

pub const TRAIL: Keymap = Keymap::screen(
    "audit",
    "Audit",
    &[
        b(
            MOVE,
            "move",
            "Select a record (PgUp/PgDn by ten; older pages load at the top)",
        ),
        b(
            ENTER,
            "details",
            "Show the record: actors, channel, outcome, details, hash",
        ),
        filter("Show only records whose actor, action, target or time match"),
        b(
            &[&[ch('v', Action::Verify)]],
            "verify",
            "Ask the daemon to verify the whole hash chain",
        ),
        refresh("Ask for records newer than the last shown"),
        b(
            &[&[ch('g', Action::Top)], &[ch('G', Action::Bottom)]],
            "",
            "Oldest fetched / newest (G follows new records)",
        ),
    ],
);

pub const FILTER: Keymap = Keymap::typing(
    "audit filter",
    "Audit",
    &filter_keys("Keep the filter and go back to the trail"),
);

#[derive(Debug, Default)]
pub struct Audit {
    /// Ascending by sequence number, without gaps.
    pub records: Vec<AuditRecordView>,
    pub loaded: bool,
    /// The selected record's sequence number; `None` follows the newest shown.
    pub selected: Option<u64>,
    pub filter: Filter,
    /// Waiting for the status (for the head) before asking for the last page.
    want_tail: bool,
    /// The audit head of the last status the daemon sent (kept, like the status, when
    /// everyone logs out).
    head: Option<u64>,
}

impl Audit {
    /// The records the filter lets through, oldest first.
    pub fn visible(&self) -> Vec<&AuditRecordView> {
        self.records
            .iter()
            .filter(|r| {
                r.actors.iter().any(|a| self.filter.hit(a))
                    || [&r.action, &r.target, &r.time]
                        .iter()
                        .any(|field| self.filter.hit(field))
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
    fn merge(&mut self, records: &[AuditRecordView]) {
        self.records.extend(records.iter().cloned());
        self.records.sort_by_key(|r| r.seq);
        self.records.dedup_by_key(|r| r.seq);
    }

    /// The last page: from the head the status reported; without a status, it is asked
    /// first.
    fn load(&mut self, shell: &mut Shell) {
        if let Some(last) = self.last_seq() {
            Self::newer(last + 1, shell);
            return;
        }
        match self.head {
            Some(head) => {
                let from = head.saturating_sub(AUDIT_PAGE as u64 - 1).max(1);
                Self::newer(from, shell);
            }
            None => {
                self.want_tail = true;
                shell.send_once(Request::Status);
            }
        }
    }

    fn newer(from: u64, shell: &mut Shell) {
        shell.send_once_as(
            NEWER,
            Request::AuditList {
                from: Some(from),
                limit: Some(AUDIT_PAGE),
            },
        );
    }

    /// When the selection reaches the top of what is fetched, the page before it.
    fn older_if_needed(&self, shell: &mut Shell) {
        if self.selected_index() != Some(0) || self.has_first() {
            return;
        }
        let Some(first) = self.first_seq() else {
            return;
        };
        let from = first.saturating_sub(AUDIT_PAGE as u64).max(1);
        let limit = usize::try_from(first - from).unwrap_or(AUDIT_PAGE);
        shell.send_once_as(
            OLDER,
            Request::AuditList {
                from: Some(from),
                limit: Some(limit),
            },
        );
    }
}

impl Screen for Audit {
    fn tab(&self) -> Tab {
        Tab {
            name: "Audit",
            short: "Audit",
        }
    }

    fn keymap(&self) -> &'static Keymap {
        if self.filter.typing { &FILTER } else { &TRAIL }
    }

    fn keymaps(&self) -> Vec<&'static Keymap> {
        vec![&TRAIL, &FILTER]
    }

    fn refresh(&mut self, shell: &mut Shell) {
        self.load(shell);
    }

    fn on_action(&mut self, action: Action, shell: &mut Shell) {
        if self.filter.took(action) {
            return;
        }
        let visible: Vec<u64> = self.visible().iter().map(|r| r.seq).collect();
        let last = visible.len().saturating_sub(1);
        let mut at = self.selected_index().unwrap_or(0);
        if move_selection(&mut at, visible.len(), action) {
            // The newest record selected means following the newest again.
            self.selected = visible.get(at).copied().filter(|_| at < last);
            if action != Action::Bottom {
                self.older_if_needed(shell);
            }
            return;
        }
        match action {
            Action::Filter => self.filter.typing = true,
            Action::Open => {
                if let Some(record) = self.selected_record() {
                    shell.info = Some(record_info(record));
                }
            }
            Action::Verify => {
                shell.send_once(Request::AuditVerify);
                shell.notice = Some("Verifying the audit trail …".into());
            }
            _ => {}
        }
    }

    /// Esc in the filter clears it.
    fn back(&mut self, _shell: &mut Shell) -> bool {
        self.filter.closed()
    }

    fn on_reply(&mut self, purpose: Purpose, reply: &Reply, shell: &mut Shell) {
        match reply {
            Reply::Status(status) => {
                self.head = Some(status.audit.head_seq);
                if std::mem::take(&mut self.want_tail) {
                    self.load(shell);
                }
            }
            Reply::AuditList(records) => {
                let full = records.len() >= AUDIT_PAGE;
                self.merge(records);
                self.loaded = true;
                // A full page of newer records: there may be more since the head we knew.
                if purpose == NEWER && full {
                    if let Some(last) = self.last_seq() {
                        Self::newer(last + 1, shell);
                    }
                }
            }
            Reply::AuditVerify(report) => {
                shell.notice = None;
                shell.info = Some(verify_info(report));
            }
            _ => {}
        }
    }

    /// An `audit` error from `audit_verify` (the chain is broken): shown in the dialog, with
    /// the record it names, rather than as a passing error line.
    fn on_refused(&mut self, purpose: Purpose, error: &ApiError, shell: &mut Shell) -> bool {
        if purpose.op != Op::AuditVerify || error.code != ErrorCode::Audit {
            return false;
        }
        shell.notice = None;
        shell.info = Some(Info {
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

    fn logged_out(&mut self) {
        *self = Self {
            head: self.head,
            ..Self::default()
        };
    }

    fn draw(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
        let visible = self.visible();
        let mut parts = Vec::new();
        if let (Some(first), Some(last)) = (self.first_seq(), self.last_seq()) {
            parts.push(format!("#{first}–#{last}"));
        }
        if !self.filter.text.is_empty() {
            parts.push(format!("{} match \"{}\"", visible.len(), self.filter.text));
        }
        if shell.awaiting(OLDER) {
            parts.push("loading older …".into());
        } else if self.loaded && !self.has_first() {
            parts.push("older at the top".into());
        }
        let title = if parts.is_empty() {
            "Audit trail".to_string()
        } else {
            format!("Audit trail ({})", parts.join(", "))
        };
        let table_area = filtered_pane(title, &self.filter, theme, frame, area);
        if visible.is_empty() {
            let text = if !self.loaded {
                if shell.awaiting(NEWER) || shell.awaiting(Purpose::new(Op::Status)) {
                    "Asking the daemon for the audit trail …".to_string()
                } else {
                    "No records yet: press r to ask the daemon.".to_string()
                }
            } else if self.records.is_empty() {
                "The trail is empty.".to_string()
            } else {
                format!(
                    "No fetched record matches \"{}\"; scroll up (after clearing) to fetch older ones.",
                    self.filter.text
                )
            };
            note(&text, theme, frame, table_area);
            return;
        }
        let rows = visible.iter().map(|r| {
            let outcome_style = match r.outcome.as_str() {
                "success" => theme.good(),
                "failure" => theme.bad(),
                "attempt" => theme.dim(),
                _ => theme.text(),
            };
            Row::new(vec![
                Cell::from(r.seq.to_string()),
                Cell::from(list_time(&r.time)),
                Cell::from(r.actors.join(",")),
                Cell::from(r.action.clone()),
                Cell::from(r.target.clone()),
                Cell::from(Span::styled(r.outcome.clone(), outcome_style)),
            ])
        });
        table(
            ["Seq", "Time", "Actors", "Action", "Target", "Outcome"],
            [
                Constraint::Length(5),
                Constraint::Length(14),
                Constraint::Length(11),
                Constraint::Length(17),
                Constraint::Min(8),
                Constraint::Length(8),
            ],
            rows,
            self.selected_index(),
            theme,
            frame,
            table_area,
        );
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

/// `2026-11-24T10:00:05.000Z` as `11-24 10:00:05` (the details show it whole).
fn list_time(time: &str) -> String {
    match (time.get(5..10), time.get(11..19)) {
        (Some(day), Some(clock)) if time.as_bytes().get(10) == Some(&b'T') => {
            format!("{day} {clock}")
        }
        _ => time.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::app::dialogs::INFO;
    use crate::app::tests::{ctrl as ctrl_key, dual, key, ok, ok_as, p, refused, sent, typed};
    use crate::app::{App, Effect, ErrorLine};
    use crate::fixtures::{self, record};
    use crate::keys::tests::{ctrl, press};
    use crate::screens::status::Status;
    use crossterm::event::KeyCode;

    fn audit(app: &App) -> &Audit {
        app.screen::<Audit>().expect("the audit screen")
    }

    pub(crate) fn records(from: u64, to: u64) -> Vec<AuditRecordView> {
        (from..=to)
            .map(|s| record(s, if s % 2 == 0 { "alice" } else { "bob" }, "user.add"))
            .collect()
    }

    fn with_status(app: &mut App, head: u64) {
        ok(app, Reply::Status(fixtures::status(head)));
        assert!(app.screen::<Status>().is_some_and(|s| s.report.is_some()));
    }

    fn list_request(effects: &[Effect]) -> Option<(Purpose, Option<u64>, Option<usize>)> {
        effects.iter().find_map(|e| match e {
            Effect::Send {
                purpose,
                request: Request::AuditList { from, limit },
            } => Some((*purpose, *from, *limit)),
            _ => None,
        })
    }

    #[test]
    fn the_audit_screen_asks_for_the_last_page_then_older_ones_at_the_top() {
        let mut app = dual();
        with_status(&mut app, 250);
        let effects = key(&mut app, KeyCode::Char('6'));
        assert!(app.showing::<Audit>());
        assert_eq!(
            list_request(&effects),
            Some((NEWER, Some(151), Some(AUDIT_PAGE)))
        );
        ok_as(&mut app, NEWER, Reply::AuditList(records(151, 250)));
        assert_eq!(
            audit(&app).selected_record().map(|r| r.seq),
            Some(250),
            "newest last, selected"
        );
        // A full page may mean newer records since the status: they are asked for.
        assert!(app.shell.awaiting(NEWER));
        ok_as(&mut app, NEWER, Reply::AuditList(records(251, 252)));
        assert_eq!(audit(&app).last_seq(), Some(252));
        assert!(!app.shell.awaiting(NEWER));
        // PgUp moves by ten; reaching the top asks for the page before.
        assert!(key(&mut app, KeyCode::PageUp).is_empty());
        assert_eq!(audit(&app).selected_record().map(|r| r.seq), Some(242));
        let effects = key(&mut app, KeyCode::Home);
        assert_eq!(list_request(&effects), Some((OLDER, Some(51), Some(100))));
        ok_as(&mut app, OLDER, Reply::AuditList(records(51, 150)));
        assert_eq!(audit(&app).first_seq(), Some(51));
        assert_eq!(
            audit(&app).selected_record().map(|r| r.seq),
            Some(151),
            "the selection stays on its record"
        );
        let effects = key(&mut app, KeyCode::PageUp);
        assert!(list_request(&effects).is_none(), "not at the top yet");
        key(&mut app, KeyCode::Home);
        ok_as(&mut app, OLDER, Reply::AuditList(records(1, 50)));
        key(&mut app, KeyCode::Home);
        assert!(audit(&app).has_first());
        assert!(
            list_request(&key(&mut app, KeyCode::Up)).is_none(),
            "nothing older"
        );
        assert_eq!(audit(&app).records.len(), 252);
        // G follows the newest again; r asks for what is newer.
        key(&mut app, KeyCode::Char('G'));
        assert_eq!(audit(&app).selected, None);
        assert_eq!(
            list_request(&key(&mut app, KeyCode::Char('r'))),
            Some((NEWER, Some(253), Some(AUDIT_PAGE)))
        );
        ok_as(&mut app, NEWER, Reply::AuditList(records(253, 253)));
        assert_eq!(audit(&app).selected_record().map(|r| r.seq), Some(253));
    }

    #[test]
    fn without_a_status_the_audit_screen_asks_for_the_head_first() {
        let mut app = dual();
        // The status asked for at login was refused: there is no head yet.
        refused(&mut app, p(Op::Status), ErrorCode::Hsm, "no token");
        let effects = key(&mut app, KeyCode::Char('6'));
        assert_eq!(sent(&effects), [p(Op::Status)]);
        let effects = ok(&mut app, Reply::Status(fixtures::status(3)));
        assert_eq!(
            list_request(&effects),
            Some((NEWER, Some(1), Some(AUDIT_PAGE)))
        );
    }

    #[test]
    fn the_audit_filter_matches_actor_action_or_time() {
        let mut app = dual();
        with_status(&mut app, 4);
        key(&mut app, KeyCode::Char('6'));
        ok_as(
            &mut app,
            NEWER,
            Reply::AuditList(vec![
                record(1, "alice", "login"),
                record(2, "bob", "user.add"),
                record(3, "alice", "credential.add"),
                record(4, "carol", "login"),
            ]),
        );
        key(&mut app, KeyCode::Char('/'));
        assert_eq!(app.context(), &FILTER);
        typed(&mut app, "ALICE");
        assert_eq!(audit(&app).visible().len(), 2);
        key(&mut app, KeyCode::Char('u')); // Ctrl-less u is text
        assert_eq!(audit(&app).visible().len(), 0);
        key(&mut app, KeyCode::Backspace);
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.context(), &TRAIL);
        assert_eq!(audit(&app).selected_record().map(|r| r.seq), Some(3));
        key(&mut app, KeyCode::Char('/'));
        ctrl_key(&mut app, 'u');
        typed(&mut app, "login");
        assert_eq!(audit(&app).visible().len(), 2);
        key(&mut app, KeyCode::Char('/')); // still typing
        key(&mut app, KeyCode::Backspace);
        ctrl_key(&mut app, 'u');
        typed(&mut app, "10:02");
        assert_eq!(
            audit(&app)
                .visible()
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>(),
            [2],
            "time text"
        );
        key(&mut app, KeyCode::Esc);
        assert_eq!(audit(&app).visible().len(), 4, "Esc clears it");
        assert_eq!(app.context(), &TRAIL);
    }

    #[test]
    fn enter_shows_a_record_and_v_verifies() {
        let mut app = dual();
        with_status(&mut app, 2);
        key(&mut app, KeyCode::Char('6'));
        let mut detailed = record(2, "alice", "user.remove");
        detailed.actors = vec!["alice".into(), "bob".into()];
        detailed.details = [("role", "auditor"), ("approval", "431")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ok_as(
            &mut app,
            NEWER,
            Reply::AuditList(vec![record(1, "bob", "login"), detailed]),
        );
        assert!(key(&mut app, KeyCode::Enter).is_empty());
        assert_eq!(app.context(), &INFO);
        let info = app.shell.info.clone().unwrap();
        assert_eq!(info.title, "Audit record #2");
        assert!(info.lines.contains(&("Actors".into(), "alice, bob".into())));
        assert!(
            info.lines
                .contains(&("Details".into(), "approval = 431".into()))
        );
        assert!(info.lines.contains(&("".into(), "role = auditor".into())));
        assert!(info.lines.contains(&("Hash".into(), format!("{:064x}", 2))));
        assert!(
            key(&mut app, KeyCode::Char('v')).is_empty(),
            "v does nothing in the dialog"
        );
        key(&mut app, KeyCode::Esc);
        assert!(app.shell.info.is_none());
        assert_eq!(
            sent(&key(&mut app, KeyCode::Char('v'))),
            [p(Op::AuditVerify)]
        );
        ok(&mut app, Reply::AuditVerify(fixtures::verified(true, 2)));
        let info = app.shell.info.clone().unwrap();
        assert_eq!(
            info.lines[0].1,
            "intact: 2 records, head #2 9f86d081884c7d65…"
        );
        assert!(!info.bad);
        key(&mut app, KeyCode::Enter);
        // A broken chain: the `audit` error is shown in the dialog, naming the record.
        key(&mut app, KeyCode::Char('v'));
        refused(
            &mut app,
            p(Op::AuditVerify),
            ErrorCode::Audit,
            "record 7: hash does not match its contents",
        );
        let info = app.shell.info.clone().unwrap();
        assert!(info.bad);
        assert_eq!(
            info.lines[0].1,
            "audit: record 7: hash does not match its contents"
        );
        assert!(app.shell.error.is_none());
        // Any other error stays on the error line.
        key(&mut app, KeyCode::Esc);
        key(&mut app, KeyCode::Char('v'));
        refused(
            &mut app,
            p(Op::AuditVerify),
            ErrorCode::Auth,
            "not logged in",
        );
        assert!(app.shell.info.is_none());
        assert_eq!(
            app.shell.error.as_ref().map(ErrorLine::text).as_deref(),
            Some("auth: not logged in")
        );
    }

    #[test]
    fn the_audit_keys() {
        let trail = |code| TRAIL.action(press(code));
        assert_eq!(trail(KeyCode::Char('v')), Some(Action::Verify));
        assert_eq!(trail(KeyCode::Char('/')), Some(Action::Filter));
        assert_eq!(trail(KeyCode::Enter), Some(Action::Open));
        assert_eq!(trail(KeyCode::PageUp), Some(Action::PageUp));
        assert_eq!(trail(KeyCode::PageDown), Some(Action::PageDown));
        assert_eq!(trail(KeyCode::Char('G')), Some(Action::Bottom));
        assert_eq!(trail(KeyCode::Char('r')), Some(Action::Refresh));
        assert_eq!(trail(KeyCode::Char('6')), Some(Action::Goto(6)));
        assert_eq!(
            trail(KeyCode::Char('D')),
            None,
            "the trail cannot be edited"
        );
        assert_eq!(trail(KeyCode::Char('y')), None);
        // The filter takes letters as text.
        for c in ['v', 'q', '/', 'a'] {
            assert_eq!(
                FILTER.action(press(KeyCode::Char(c))),
                Some(Action::Input(c))
            );
        }
        assert_eq!(FILTER.action(press(KeyCode::Esc)), Some(Action::Back));
        assert_eq!(FILTER.action(ctrl('u')), Some(Action::ClearInput));
    }

    #[test]
    fn list_times_drop_the_year_and_milliseconds() {
        assert_eq!(list_time("2026-11-24T10:00:05.000Z"), "11-24 10:00:05");
        assert_eq!(list_time("t"), "t");
    }
}
