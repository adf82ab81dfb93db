//! Session: log in (two administrators one after the other satisfy dual control), and who is
//! logged in on this console.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, TableState, Wrap};

use super::{pane, table};
use crate::app::{App, LoginField, Purpose, SessionPane};
use crate::keys::Context;
use crate::theme::Theme;

pub fn render(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let [top, pending_area] =
        Layout::vertical([Constraint::Length(11), Constraint::Min(4)]).areas(area);
    render_pending(app, theme, frame, pending_area);
    let [form_area, users_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let form_focused = app.context() == Context::LoginForm;

    let title = if app.logged_in() {
        "Log in a second user"
    } else {
        "Log in"
    };
    let block = pane(title.into(), app.session_pane == SessionPane::Form, theme);
    let inner = block.inner(form_area);
    frame.render_widget(block, form_area);

    let width = usize::from(inner.width.saturating_sub(11)).max(4);
    let field_line = |label: &'static str, text: String, focused: bool| {
        let shown: String = text
            .chars()
            .rev()
            .take(width)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let pad = width.saturating_sub(shown.chars().count());
        let style = if focused {
            theme.selected()
        } else {
            theme.text()
        };
        Line::from(vec![
            Span::styled(format!("{label:<10} "), theme.label()),
            Span::styled(format!("{shown}{}", "_".repeat(pad)), style),
        ])
    };
    let on = |f: LoginField| app.session_pane == SessionPane::Form && app.login.field == f;
    let sending = app.awaiting(Purpose::Login);
    let lines = vec![
        Line::from(""),
        field_line("User", app.login.user.shown(), on(LoginField::User)),
        Line::from(""),
        field_line(
            "Password",
            app.login.password_shown(),
            on(LoginField::Password),
        ),
        Line::from(""),
        Line::from(Span::styled(
            if sending {
                "Logging in …"
            } else {
                "Enter logs in. Two administrators, one after the other, satisfy dual control."
            },
            theme.dim(),
        )),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    if form_focused {
        let (row, typed) = match app.login.field {
            LoginField::User => (1, app.login.user.chars()),
            LoginField::Password => (3, app.login.password_chars()),
        };
        let column = 11 + typed.min(width);
        frame.set_cursor_position(Position::new(
            inner.x + u16::try_from(column).unwrap_or(0),
            inner.y + row,
        ));
    }

    let block = pane(
        "Logged in on this console".into(),
        app.session_pane == SessionPane::Users,
        theme,
    );
    let mut lines = vec![Line::from("")];
    let users = app.users();
    if users.is_empty() {
        lines.push(Line::from(Span::styled(
            "Nobody is logged in.",
            theme.dim(),
        )));
    }
    for (i, user) in users.iter().enumerate() {
        let selected = app.session_pane == SessionPane::Users && i == app.session_selected;
        let mut spans = vec![Span::styled(
            format!(
                "{}{:<16} {:<13}",
                if selected { "▶ " } else { "  " },
                user.name,
                user.role.as_str()
            ),
            if selected {
                theme.selected()
            } else {
                theme.text()
            },
        )];
        if user.must_change_password {
            spans.push(Span::styled(" must change password", theme.warn()));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    let dual = app.session.as_ref().is_some_and(|s| s.dual_control);
    lines.push(Line::from(vec![
        Span::styled("Dual control ", theme.label()),
        if dual {
            Span::styled("satisfied", theme.good())
        } else {
            Span::styled("not satisfied", theme.warn())
        },
    ]));
    lines.push(Line::from(Span::styled(
        if dual {
            "Sensitive operations run at once, in both names."
        } else {
            "Sensitive operations need a second administrator: log one in here, or have one approve the request."
        },
        theme.dim(),
    )));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        users_area,
    );
}

/// The time of day of an RFC 3339 time (`2026-11-24T10:10:00.000Z` → `10:10:00`), or the
/// text as it is.
pub(crate) fn time_of_day(time: &str) -> &str {
    time.get(11..19).unwrap_or(time)
}

fn render_pending(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let focused = app.session_pane == SessionPane::Pending;
    let pending = &app.pending;
    let title = if pending.loaded {
        format!("Pending approvals ({})", pending.list.len())
    } else {
        "Pending approvals".to_string()
    };
    let block = pane(title, focused, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if pending.list.is_empty() {
        let text = if !app.can_approve() {
            "Requests waiting for a second administrator show here while an administrator is logged in."
        } else if app.awaiting(Purpose::Pending) {
            "Asking the daemon for pending requests …"
        } else if pending.loaded {
            "Nothing waits for approval."
        } else {
            "Tab here and press r to ask the daemon."
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, theme.dim())).wrap(Wrap { trim: false }),
            inner,
        );
        return;
    }
    let rows = pending.list.iter().map(|p| {
        Row::new(vec![
            Cell::from(p.id.to_string()),
            Cell::from(format!("{} ({})", p.requested_by, p.channel)),
            Cell::from(p.operation.clone()),
            Cell::from(time_of_day(&p.expires).to_string()),
        ])
    });
    let table = table(
        ["ID", "From", "Operation", "Expires"],
        [
            Constraint::Length(5),
            Constraint::Length(21),
            Constraint::Min(20),
            Constraint::Length(8),
        ],
        rows,
        theme,
    );
    let mut state = TableState::default().with_selected(focused.then_some(pending.selected));
    frame.render_stateful_widget(table, inner, &mut state);
}
