//! Users: the accounts with role, state and failed logins.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::{pane, table};
use crate::app::{App, Purpose};
use crate::theme::Theme;

pub fn render(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let accounts = &app.accounts;
    let block = pane(format!("Users ({})", accounts.list.len()), true, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if accounts.list.is_empty() {
        let text = if app.awaiting(Purpose::UserList) {
            "Asking the daemon for the accounts …"
        } else if accounts.loaded {
            "No accounts."
        } else {
            "No list yet: press r to ask the daemon (it needs an administrator)."
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, theme.dim())).wrap(Wrap { trim: false }),
            inner,
        );
        return;
    }
    let rows = accounts.list.iter().map(|u| {
        let state_style = if u.state == "active" {
            theme.good()
        } else {
            theme.bad()
        };
        let mut state = vec![Span::styled(u.state.clone(), state_style)];
        if u.must_change_password {
            state.push(Span::styled(" · one-time pw", theme.warn()));
        }
        Row::new(vec![
            Cell::from(u.name.clone()),
            Cell::from(u.role.as_str()),
            Cell::from(u.failed_logins.to_string()),
            Cell::from(ratatui::text::Line::from(state)),
        ])
    });
    let table = table(
        ["Name", "Role", "Failed", "State"],
        [
            Constraint::Length(16),
            Constraint::Length(13),
            Constraint::Length(6),
            Constraint::Min(20),
        ],
        rows,
        theme,
    );
    let mut state = ratatui::widgets::TableState::default().with_selected(Some(accounts.selected));
    frame.render_stateful_widget(table, inner, &mut state);
}
