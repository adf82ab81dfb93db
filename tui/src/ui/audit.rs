//! Audit: the trail, newest last; a filter line while typing one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, TableState, Wrap};

use super::{pane, table};
use crate::app::{App, Purpose};
use crate::theme::Theme;

pub fn render(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let audit = &app.audit;
    let visible = audit.visible();
    let mut parts = Vec::new();
    if let (Some(first), Some(last)) = (audit.first_seq(), audit.last_seq()) {
        parts.push(format!("#{first}–#{last}"));
    }
    if !audit.filter.is_empty() {
        parts.push(format!("{} match \"{}\"", visible.len(), audit.filter));
    }
    if app.awaiting(Purpose::AuditOlder) {
        parts.push("loading older …".into());
    } else if audit.loaded && !audit.has_first() {
        parts.push("older at the top".into());
    }
    let title = if parts.is_empty() {
        "Audit trail".to_string()
    } else {
        format!("Audit trail ({})", parts.join(", "))
    };
    let block = pane(title, true, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [table_area, filter_area] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(u16::from(audit.filtering)),
    ])
    .areas(inner);
    if audit.filtering {
        frame.render_widget(
            Line::from(vec![
                Span::styled("/", theme.key()),
                Span::styled(format!("{}_", audit.filter), theme.selected()),
            ]),
            filter_area,
        );
    }
    if visible.is_empty() {
        let text = if !audit.loaded {
            if app.awaiting(Purpose::AuditNewer) || app.awaiting(Purpose::Status) {
                "Asking the daemon for the audit trail …".to_string()
            } else {
                "No records yet: press r to ask the daemon.".to_string()
            }
        } else if audit.records.is_empty() {
            "The trail is empty.".to_string()
        } else {
            format!(
                "No fetched record matches \"{}\"; scroll up (after clearing) to fetch older ones.",
                audit.filter
            )
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, theme.dim())).wrap(Wrap { trim: false }),
            table_area,
        );
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
    let table = table(
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
        theme,
    );
    let mut state = TableState::default().with_selected(audit.selected_index());
    frame.render_stateful_widget(table, table_area, &mut state);
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
mod tests {
    #[test]
    fn list_times_drop_the_year_and_milliseconds() {
        assert_eq!(
            super::list_time("2026-11-24T10:00:05.000Z"),
            "11-24 10:00:05"
        );
        assert_eq!(super::list_time("t"), "t");
    }
}
