//! The dialogs drawn over a screen: a form (with or without tabs), a context menu, a read-only
//! dialog, the help, a one-time password shown once, and a confirm.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Clear, Padding, Paragraph, Wrap};

use super::{centered, dialog, lines_needed, wrapped};
use crate::app::{Confirm, Info, Menu, Reveal};
use crate::input::{FieldKind, Form, FormField};
use crate::keys::Keymap;
use crate::theme::Theme;

/// The help over a screen: every listed binding of where the keyboard is under it.
pub(super) fn render_help(
    context: &Keymap,
    tab_names: &[&str],
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let mut lines: Vec<Line> = context
        .all()
        .filter_map(|b| {
            let text = b.help_text(tab_names)?;
            Some(Line::from(vec![
                Span::styled(format!("{:<9} ", b.keys_text(tab_names.len())), theme.key()),
                Span::raw(text),
            ]))
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Errors show the daemon's code first (auth, dual-control, …).",
        theme.dim(),
    )));
    let height = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2);
    let popup = centered(area, 76, height);
    frame.render_widget(Clear, popup);
    let title = format!("Help · {}", context.title);
    wrapped(lines, dialog(&title, theme), frame, popup);
}

pub(super) fn render_menu(menu: &Menu, theme: Theme, frame: &mut Frame, area: Rect) {
    let mut lines = vec![Line::from("")];
    for (i, (key, label, _)) in menu.items.iter().enumerate() {
        let selected = i == menu.selected;
        let key = if *key == ' ' {
            "Space".to_string()
        } else {
            key.to_string()
        };
        lines.push(Line::from(vec![
            Span::raw(if selected { "▶ " } else { "  " }),
            Span::styled(format!("{key:<6}"), theme.key()),
            Span::styled(
                label.clone(),
                if selected {
                    theme.selected()
                } else {
                    theme.text()
                },
            ),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Enter or the key does it; Esc closes.",
        theme.dim(),
    )));
    let height = u16::try_from(menu.items.len() + 5).unwrap_or(u16::MAX);
    let popup = centered(area, 46, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(dialog(&menu.title, theme)),
        popup,
    );
}

/// A read-only dialog: label and value lines, wrapped, scrolled with ↑↓.
pub(super) fn render_info(info: &Info, theme: Theme, frame: &mut Frame, area: Rect) {
    const WIDTH: u16 = 74;
    let label_width = info
        .lines
        .iter()
        .map(|(label, _)| label.chars().count())
        .max()
        .unwrap_or(0);
    let label_width = if label_width == 0 { 0 } else { label_width + 2 };
    let room = usize::from(WIDTH.saturating_sub(4)).max(1);
    let mut rows = 0usize;
    let mut lines = Vec::new();
    for (label, value) in &info.lines {
        let text_chars = label_width + value.chars().count();
        rows += text_chars.div_ceil(room).max(1);
        let value_style = if info.bad { theme.bad() } else { theme.text() };
        lines.push(Line::from(vec![
            Span::styled(format!("{label:<label_width$}"), theme.label()),
            Span::styled(value.clone(), value_style),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled("Enter", theme.key()),
        Span::raw(" close"),
    ]));
    let height = u16::try_from(rows + 5).unwrap_or(u16::MAX);
    let popup = centered(area, WIDTH, height.min(area.height.saturating_sub(2)));
    frame.render_widget(Clear, popup);
    let block = dialog(&info.title, theme);
    let block = if info.bad {
        block.border_style(theme.bad())
    } else {
        block
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((info.scroll, 0))
            .block(block.padding(Padding::new(1, 1, 1, 0))),
        popup,
    );
}

/// A form dialog: one line per field (label, then the text or `*`s), the hint under them.
pub(super) fn render_form(form: &Form, covered: bool, theme: Theme, frame: &mut Frame, area: Rect) {
    if !form.tabs.is_empty() {
        render_tabbed_form(form, covered, theme, frame, area);
        return;
    }
    // Two rows a field (the value, then the reason it is refused, if it is), a blank row, the
    // hint as it wraps in the dialog (a row spare: it wraps at words), and the border.
    const WIDTH: u16 = 66;
    let rows = u16::try_from(form.fields.len() * 2).unwrap_or(u16::MAX);
    let height = rows.saturating_add(lines_needed(&form.hint, WIDTH) + 4);
    let popup = centered(area, WIDTH, height);
    frame.render_widget(Clear, popup);
    let block = dialog(&form.title, theme);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let label_width = form
        .fields
        .iter()
        .map(|f| f.label.chars().count() + 3)
        .max()
        .unwrap_or(0)
        .max(21);
    let width = usize::from(inner.width).saturating_sub(label_width).max(4);
    let mut lines = vec![Line::from("")];
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        lines.push(Line::from(vec![
            label_span(field.label, label_width, focused, theme),
            Span::styled(
                value_text(field, width, true),
                if focused {
                    theme.selected()
                } else {
                    theme.text()
                },
            ),
        ]));
        lines.push(match form.reason(i) {
            // One row: a reason longer than the room is cut (the full one shows when sending).
            Some(reason) => Line::from(Span::styled(
                format!(
                    "{:w$}✗ {}",
                    "",
                    reason
                        .chars()
                        .take(width.saturating_sub(2))
                        .collect::<String>(),
                    w = label_width
                ),
                theme.bad(),
            )),
            None => Line::from(""),
        });
    }
    lines.push(Line::from(Span::styled(form.hint.clone(), theme.dim())));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    if !covered {
        if let Some(FieldKind::Text(field)) = form.fields.get(form.focus).map(|f| &f.kind) {
            let column = label_width + field.chars().min(width);
            let row = 1 + 2 * form.focus;
            frame.set_cursor_position(Position::new(
                inner.x + u16::try_from(column).unwrap_or(0),
                inner.y + u16::try_from(row).unwrap_or(0),
            ));
        }
    }
}

/// A form with tabs (the key group editor): the tab line, then one line per field of the
/// current tab: label, value, and beside it the reason the value is refused (error style) or
/// the field's note (dim).
fn render_tabbed_form(form: &Form, covered: bool, theme: Theme, frame: &mut Frame, area: Rect) {
    const LABEL: usize = 19;
    const VALUE: usize = 22;
    let fields = form.on_tab();
    // The dialog's width less its border and padding: what a line has.
    let room = usize::from(78.min(area.width)).saturating_sub(4);
    let mut tab_line = vec![Span::styled(
        if form.on_tabs { "▶ " } else { "  " },
        theme.label(),
    )];
    for (i, name) in form.tabs.iter().enumerate() {
        let (text, style) = if i == form.tab {
            let style = if form.on_tabs {
                theme.selected()
            } else {
                theme.title()
            };
            (format!("[{name}]"), style)
        } else {
            (format!(" {name} "), theme.dim())
        };
        tab_line.push(Span::styled(text, style));
        tab_line.push(Span::raw(" "));
    }
    let mut lines = vec![Line::from(""), Line::from(tab_line), Line::from("")];
    let mut focus_line = None;
    for &i in &fields {
        let field = &form.fields[i];
        let enabled = form.enabled(i);
        let focused = i == form.focus && !form.on_tabs;
        let value = value_text(field, VALUE, enabled);
        let used = LABEL + value.chars().count();
        let mut spans = vec![
            label_span(field.label, LABEL, focused, theme),
            Span::styled(
                value,
                if focused {
                    theme.selected()
                } else if enabled {
                    theme.text()
                } else {
                    theme.dim()
                },
            ),
        ];
        if i == form.focus {
            focus_line = Some(lines.len());
        }
        let mut under = None;
        if let Some(reason) = form.reason(i) {
            let beside = format!(" ✗ {reason}");
            if used + beside.chars().count() <= room {
                spans.push(Span::styled(beside, theme.bad()));
            } else {
                // Too long to stand beside the value: on a line of its own under it, cut to
                // the line (the whole of it shows when sending is refused).
                under = Some(Span::styled(
                    cut(&format!("    ✗ {reason}"), room),
                    theme.bad(),
                ));
            }
        } else if !field.note.is_empty() {
            spans.push(Span::styled(format!(" {}", field.note), theme.dim()));
        }
        lines.push(Line::from(spans));
        lines.extend(under.map(Line::from));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(form.hint.clone(), theme.dim())));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = centered(area, 78, height);
    frame.render_widget(Clear, popup);
    let block = dialog(&form.title, theme);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    if covered || form.on_tabs {
        return;
    }
    let Some(row) = focus_line else {
        return;
    };
    if let Some(FieldKind::Text(field)) = form.fields.get(form.focus).map(|f| &f.kind) {
        if form.enabled(form.focus) {
            let column = LABEL + field.chars().min(VALUE);
            frame.set_cursor_position(Position::new(
                inner.x + u16::try_from(column).unwrap_or(0),
                inner.y + u16::try_from(row).unwrap_or(0),
            ));
        }
    }
}

/// A field's label, `▶` before it when it has the keyboard, padded to `width`.
fn label_span(label: &str, width: usize, focused: bool, theme: Theme) -> Span<'static> {
    Span::styled(
        format!(
            "{}{:<w$}",
            if focused { "▶ " } else { "  " },
            label,
            w = width.saturating_sub(2)
        ),
        theme.label(),
    )
}

/// A field's value in `width` columns: a text's end, underscores for the room left (`off` for
/// a field its box turns off); a choice or a box as it shows.
fn value_text(field: &FormField, width: usize, enabled: bool) -> String {
    match &field.kind {
        FieldKind::Text(_) if !enabled => format!("{:<width$}", "off"),
        FieldKind::Text(_) => {
            let text = field.shown();
            let skip = text.chars().count().saturating_sub(width);
            let shown: String = text.chars().skip(skip).collect();
            format!("{shown:_<width$}")
        }
        FieldKind::Choice { .. } | FieldKind::Check(_) => field.shown(),
    }
}

/// At most `width` characters: the text, or its start and `…`.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A one-time password, shown once.
pub(super) fn render_reveal(reveal: &Reveal, theme: Theme, frame: &mut Frame, area: Rect) {
    let text = Text::from(vec![
        Line::from(""),
        Line::from(reveal.intro.clone()),
        Line::from(""),
        // Borrowed, not formatted: each redraw leaves no copy of the password behind.
        Line::from(vec![
            Span::styled("  ", theme.selected()),
            Span::styled(reveal.secret.expose(), theme.selected()),
            Span::styled("  ", theme.selected()),
        ]),
        Line::from(""),
        Line::from(reveal.outro.clone()),
    ]);
    let popup = centered(area, 64, 10);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(dialog(&reveal.title, theme)),
        popup,
    );
}

/// A confirm dialog: the effect in words, and the keys.
pub(super) fn render_confirm(confirm: &Confirm, theme: Theme, frame: &mut Frame, area: Rect) {
    let text = Text::from(vec![
        Line::from(""),
        Line::from(confirm.effect.clone()),
        Line::from(""),
        {
            let (yes, no) = match confirm.then {
                crate::app::Confirmable::Show { .. } => (" open the log   ", " stay here"),
                _ => (" confirm   ", " cancel"),
            };
            Line::from(vec![
                Span::styled("y", theme.key()),
                Span::raw(yes),
                Span::styled("n", theme.key()),
                Span::raw(no),
            ])
        },
    ]);
    // Room for the effect wrapped at the dialog's width (a line of slack when it wraps,
    // as words do not break evenly), two blank lines, the keys and the border.
    let effect_lines = match lines_needed(&confirm.effect, 56) {
        1 => 1,
        n => n.saturating_add(1),
    };
    let popup = centered(area, 56, effect_lines.saturating_add(5));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(dialog(&confirm.title, theme)),
        popup,
    );
}
