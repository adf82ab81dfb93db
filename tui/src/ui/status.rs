//! Status: the HSM token and its wrap algorithms, the store, the audit head, the scheduler,
//! the version and the process hardening, as `status` reports them.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{field, pane};
use crate::app::{App, Purpose};
use crate::theme::Theme;

pub fn render(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let Some(s) = &app.status else {
        let text = if app.awaiting(Purpose::Status) {
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

    let h = &s.hsm;
    let hsm = vec![
        field("State", ok_or(&h.state), theme),
        field("Token", plain(h.token_label.clone()), theme),
        field("Serial", plain(h.serial.clone()), theme),
        field("Model", plain(h.model.clone()), theme),
        field("Maker", plain(h.manufacturer.clone()), theme),
        field(
            "Wrap",
            plain(if h.wrap_algorithms.is_empty() {
                "none (cannot import into AWS)".into()
            } else {
                h.wrap_algorithms.join(", ")
            }),
            theme,
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
    render_panel(frame, hsm_area, "HSM", hsm, theme);

    let sc = &s.scheduler;
    let scheduler = vec![
        field("State", ok_or(&sc.state), theme),
        field(
            "Designated",
            plain(if sc.designated {
                "yes (rotates on schedule)".into()
            } else {
                "no (another appliance)".into()
            }),
            theme,
        ),
        field(
            "Groups",
            plain(format!("{} scheduled", sc.scheduled_groups)),
            theme,
        ),
        field(
            "Next due",
            plain(sc.next_due.clone().unwrap_or_else(|| "-".into())),
            theme,
        ),
        field(
            "Rotations",
            plain(format!(
                "{} of {} slot(s) busy",
                sc.running_rotations, sc.concurrency
            )),
            theme,
        ),
    ];
    render_panel(frame, sched_area, "Scheduler", scheduler, theme);

    let st = &s.store;
    let store = vec![
        field("Path", plain(st.path.clone()), theme),
        field(
            "Contents",
            plain(format!("{} user(s), {} key(s)", st.users, st.keys)),
            theme,
        ),
        field(
            "Size",
            plain(format!(
                "{} bytes, schema {}",
                st.size_bytes, st.schema_version
            )),
            theme,
        ),
    ];
    render_panel(frame, store_area, "Store", store, theme);

    let a = &s.audit;
    let audit = vec![
        field("Records", plain(a.records.to_string()), theme),
        field("Head", plain(format!("#{}", a.head_seq)), theme),
        field("Hash", plain(short_hash(&a.head_hash)), theme),
    ];
    render_panel(frame, audit_area, "Audit head", audit, theme);

    let mut appliance = vec![field(
        "Version",
        plain(format!("keywardd {}", s.version)),
        theme,
    )];
    // Hardening: a count of what is in place, and every measure that is not, by name.
    let fine = s.hardening.values().filter(|v| v.starts_with("ok")).count();
    appliance.push(field(
        "Hardening",
        plain(format!("{fine} of {} measure(s) ok", s.hardening.len())),
        theme,
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
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(pane(title.into(), false, theme)),
        area,
    );
}

/// `9f86d081…b0f00a08`: enough to compare with `audit verify`, short enough for a pane.
fn short_hash(hash: &str) -> String {
    match (hash.get(..8), hash.get(hash.len().saturating_sub(8)..)) {
        (Some(head), Some(tail)) if hash.len() > 20 => format!("{head}…{tail}"),
        _ => hash.to_string(),
    }
}
