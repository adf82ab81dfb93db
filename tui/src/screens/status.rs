//! Status: the HSM token and its wrap algorithms, the store, the audit head, the scheduler,
//! the version and the process hardening, as `status` reports them; `d` designates this
//! appliance as the scheduled rotator, or stops it being one (`rotation.designated`).

use keyward_proto::{Op, Reply, Request, StatusReport};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Screen, Tab};
use crate::app::{Purpose, Shell};
use crate::keys::{Action, Keymap, b, ch, refresh};
use crate::theme::Theme;
use crate::ui::{field, pane, wrapped};

/// The setting `d` changes.
const DESIGNATED: &str = "rotation.designated";

pub const STATUS: Keymap = Keymap::screen(
    "status",
    "Status",
    &[
        refresh("Ask the daemon for its status again"),
        b(
            &[&[ch('d', Action::Designate)]],
            "designated",
            "Make this appliance the scheduled rotator, or stop it (setting rotation.designated; asks first)",
        ),
    ],
);

#[derive(Debug, Default)]
pub struct Status {
    /// The last status the daemon sent.
    pub report: Option<StatusReport>,
}

impl Screen for Status {
    fn tab(&self) -> Tab {
        Tab {
            name: "Status",
            short: "Stat",
        }
    }

    fn keymap(&self) -> &'static Keymap {
        &STATUS
    }

    fn refresh(&mut self, shell: &mut Shell) {
        shell.send_once(Request::Status);
    }

    fn on_action(&mut self, action: Action, shell: &mut Shell) {
        if action == Action::Designate {
            self.ask_designate(shell);
        }
    }

    fn on_reply(&mut self, _purpose: Purpose, reply: &Reply, shell: &mut Shell) {
        match reply {
            Reply::Status(report) => self.report = Some(report.clone()),
            Reply::SettingsSet(settings) => {
                shell.notice = Some(match settings.iter().find(|s| s.name == DESIGNATED) {
                    Some(s) => format!("{DESIGNATED} is now {}.", s.value),
                    None => "Settings saved.".into(),
                });
                shell.send_once(Request::Status);
            }
            _ => {}
        }
    }

    fn draw(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
        let Some(s) = &self.report else {
            let text = if shell.awaiting(Purpose::new(Op::Status)) {
                "Asking the daemon for its status …"
            } else {
                "No status yet: press r to ask the daemon."
            };
            frame.render_widget(
                Paragraph::new(text).block(pane("Status".into(), false, theme)),
                area,
            );
            return;
        };
        draw_report(s, theme, frame, area);
    }
}

impl Status {
    /// `d`: flips `rotation.designated`, asking first with what it means for the scheduled
    /// rotations.
    fn ask_designate(&mut self, shell: &mut Shell) {
        let Some(designated) = self.report.as_ref().map(|s| s.scheduler.designated) else {
            shell.notice = Some("No status yet: press r first.".into());
            return;
        };
        let (value, effect) = if designated {
            (
                "false",
                "Set rotation.designated to false: this appliance stops rotating key groups on their schedule (forced rotations and jobs already running still run). Designate another appliance, or scheduled keys stop rotating.",
            )
        } else {
            (
                "true",
                "Set rotation.designated to true: this appliance rotates key groups when they fall due. In a fleet sharing key groups, only one appliance should.",
            )
        };
        shell.ask(
            format!("Set {DESIGNATED} to {value}?"),
            effect.into(),
            Request::SettingsSet {
                name: DESIGNATED.into(),
                value: value.into(),
            },
        );
    }
}

fn draw_report(s: &StatusReport, theme: Theme, frame: &mut Frame, area: Rect) {
    let [row1, row2, row3] = Layout::vertical([
        Constraint::Length(10),
        Constraint::Length(5),
        Constraint::Min(3),
    ])
    .areas(area);
    let halves = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]);
    let [hsm_area, sched_area] = halves.areas(row1);
    let [store_area, audit_area] = halves.areas(row2);

    let ok_or = |state: &str| {
        if state == "ok" || state == "running" {
            Span::styled(state.to_string(), theme.good())
        } else {
            Span::styled(state.to_string(), theme.bad())
        }
    };
    let plain = |text: String| Span::styled(text, theme.text());
    let text = |label, value| field(label, plain(value), theme);

    let h = &s.hsm;
    let mut hsm = vec![
        field("State", ok_or(&h.state), theme),
        text("Token", h.token_label.clone()),
        text("Serial", h.serial.clone()),
        text("Model", h.model.clone()),
        text("Maker", h.manufacturer.clone()),
        text(
            "Wrap",
            if h.wrap_algorithms.is_empty() {
                "none (cannot import into AWS)".into()
            } else {
                h.wrap_algorithms.join(", ")
            },
        ),
        field(
            "Missing",
            if h.missing_keys.is_empty() {
                plain("none".into())
            } else {
                Span::styled(
                    format!(
                        "{} key(s): {}",
                        h.missing_keys.len(),
                        h.missing_keys.join(", ")
                    ),
                    theme.bad(),
                )
            },
            theme,
        ),
    ];
    if !h.torn_objects.is_empty() {
        // Objects a kill tore on the token, found and removed at start-up (shown only then).
        hsm.push(field(
            "Torn",
            Span::styled(h.torn_objects.join("; "), theme.bad()),
            theme,
        ));
    }
    render_panel(frame, hsm_area, "HSM", hsm, theme);

    let sc = &s.scheduler;
    let scheduler = vec![
        field("State", ok_or(&sc.state), theme),
        text(
            "Designated",
            if sc.designated {
                "yes (rotates on schedule)".into()
            } else {
                "no (another appliance)".into()
            },
        ),
        text("Groups", format!("{} scheduled", sc.scheduled_groups)),
        text(
            "Next due",
            sc.next_due.clone().unwrap_or_else(|| "-".into()),
        ),
        text(
            "Rotations",
            format!(
                "{} of {} slot(s) busy",
                sc.running_rotations, sc.concurrency
            ),
        ),
    ];
    render_panel(frame, sched_area, "Scheduler", scheduler, theme);

    let st = &s.store;
    let store = vec![
        text("Path", st.path.clone()),
        text(
            "Contents",
            format!("{} user(s), {} key(s)", st.users, st.keys),
        ),
        text(
            "Size",
            format!("{} bytes, schema {}", st.size_bytes, st.schema_version),
        ),
    ];
    render_panel(frame, store_area, "Store", store, theme);

    let a = &s.audit;
    let audit = vec![
        text("Records", a.records.to_string()),
        text("Head", format!("#{}", a.head_seq)),
        text("Hash", short_hash(&a.head_hash)),
    ];
    render_panel(frame, audit_area, "Audit head", audit, theme);

    let mut appliance = vec![text("Version", format!("keywardd {}", s.version))];
    // Hardening: a count of what is in place, and every measure that is not, by name.
    let fine = s.hardening.values().filter(|v| v.starts_with("ok")).count();
    appliance.push(text(
        "Hardening",
        format!("{fine} of {} measure(s) ok", s.hardening.len()),
    ));
    for (name, state) in s.hardening.iter().filter(|(_, v)| !v.starts_with("ok")) {
        appliance.push(Line::from(vec![
            Span::raw(format!("{:<11}", "")),
            Span::styled(format!("{name}: {state}"), theme.warn()),
        ]));
    }
    render_panel(frame, row3, "Appliance", appliance, theme);
}

fn render_panel(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line>, theme: Theme) {
    wrapped(lines, pane(title.into(), false, theme), frame, area);
}

/// `9f86d081…b0f00a08`: enough to compare with `audit verify`, short enough for a pane.
fn short_hash(hash: &str) -> String {
    match (hash.get(..8), hash.get(hash.len().saturating_sub(8)..)) {
        (Some(head), Some(tail)) if hash.len() > 20 => format!("{head}…{tail}"),
        _ => hash.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::{dual, key};
    use crate::keys::tests::{press, screen_keys_of_the_issue};
    use crossterm::event::KeyCode;

    #[test]
    fn d_without_a_status_says_to_ask_first() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('2'));
        assert!(key(&mut app, KeyCode::Char('d')).is_empty());
        assert!(app.shell.confirm.is_none());
        assert_eq!(
            app.shell.notice.as_deref(),
            Some("No status yet: press r first.")
        );
    }

    #[test]
    fn the_status_keys() {
        screen_keys_of_the_issue(&STATUS);
        let status = |code| STATUS.action(press(code));
        assert_eq!(status(KeyCode::Char('d')), Some(Action::Designate));
        assert_eq!(status(KeyCode::Char('2')), Some(Action::Goto(2)));
        assert_eq!(status(KeyCode::Char('r')), Some(Action::Refresh));
        assert_eq!(status(KeyCode::Char('/')), None, "nothing to filter");
        assert_eq!(status(KeyCode::Char('l')), None);
    }
}
