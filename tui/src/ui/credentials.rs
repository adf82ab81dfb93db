//! Credentials: name, the access key id as the daemon masks it, when created and last used,
//! and the groups that use it. Never the secret (the daemon does not send it).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, TableState, Wrap};

use super::{pane, table};
use crate::app::{App, Purpose, short_mask};
use crate::theme::Theme;

pub fn render(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let credentials = &app.credentials;
    let block = pane(
        format!("AWS credentials ({})", credentials.list.len()),
        true,
        theme,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if credentials.list.is_empty() {
        let text = if app.awaiting(Purpose::CredentialList) {
            "Asking the daemon for the credentials …"
        } else if credentials.loaded {
            "No credentials yet. i imports the CSV file the AWS console gives out; a adds one by hand."
        } else {
            "No list yet: press r to ask the daemon (it needs an administrator)."
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, theme.dim())).wrap(Wrap { trim: false }),
            inner,
        );
        return;
    }
    let rows = credentials.list.iter().map(|c| {
        let last_used = if c.last_used == "never" {
            Span::styled("never", theme.dim())
        } else {
            Span::raw(short_time(&c.last_used))
        };
        let groups = if c.groups.is_empty() {
            Span::styled("none", theme.dim())
        } else {
            Span::raw(c.groups.join(", "))
        };
        Row::new(vec![
            Cell::from(c.name.clone()),
            Cell::from(short_mask(&c.access_key_id)),
            Cell::from(short_time(&c.created)),
            Cell::from(last_used),
            Cell::from(groups),
        ])
    });
    let table = table(
        ["Name", "Key id", "Created", "Last used", "Groups"],
        [
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(16),
            Constraint::Length(16),
            Constraint::Min(10),
        ],
        rows,
        theme,
    );
    let mut state = TableState::default().with_selected(Some(credentials.selected));
    frame.render_stateful_widget(table, inner, &mut state);
}

/// `2026-11-24T10:00:05.000Z` as `2026-11-24 10:00` (to the minute, for a column); anything
/// else as it came.
pub(crate) fn short_time(time: &str) -> String {
    match (time.get(..10), time.get(11..16)) {
        (Some(day), Some(clock)) if time.as_bytes().get(10) == Some(&b'T') => {
            format!("{day} {clock}")
        }
        _ => time.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shortened_to_the_minute() {
        assert_eq!(short_time("2026-11-24T10:00:05.000Z"), "2026-11-24 10:00");
        assert_eq!(short_time("never"), "never");
    }
}
