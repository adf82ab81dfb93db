//! Drawing: a pure function of the [`App`] state. The frame is the tab bar, an optional
//! "daemon unreachable" banner, the screen, an optional error or notice bar, and the footer
//! with the keys that work here; help and confirm dialogs draw over it.

mod audit;
mod credentials;
mod jobs;
mod keydb;
mod session;
mod status;
mod users;

use ratatui::Frame;
use ratatui::layout::Position;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Clear, HighlightSpacing, Padding, Paragraph, Row, Table, Wrap};

use crate::app::{App, Screen, TABS};
use crate::client::Link;
use crate::keys::{self, Context};
use crate::theme::Theme;

/// Below this the console asks for a larger terminal instead of drawing a mess.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

pub fn render(app: &App, theme: Theme, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "The console needs at least {MIN_WIDTH}×{MIN_HEIGHT} (80×24 is best); this terminal is {}×{}.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let banner = banner_text(app);
    let banner_height = banner
        .as_ref()
        .map_or(0, |text| lines_needed(text, area.width).min(2));
    let bar = bar_text(app);
    let bar_height = bar
        .as_ref()
        .map_or(0, |(text, _)| lines_needed(text, area.width).min(3));
    let [top, banner_area, body, bar_area, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_height),
        Constraint::Min(0),
        Constraint::Length(bar_height),
        Constraint::Length(1),
    ])
    .areas(area);

    render_tabs(app, theme, frame, top);
    if let Some(text) = banner {
        frame.render_widget(
            Paragraph::new(text)
                .style(theme.alert())
                .wrap(Wrap { trim: true })
                .block(Block::new().padding(Padding::horizontal(1))),
            banner_area,
        );
    }
    match app.screen {
        Screen::Session => session::render(app, theme, frame, body),
        Screen::Status => status::render(app, theme, frame, body),
        Screen::Jobs => jobs::render_list(app, theme, frame, body),
        Screen::JobLog => jobs::render_log(app, theme, frame, body),
        Screen::Users => users::render(app, theme, frame, body),
        Screen::Credentials => credentials::render(app, theme, frame, body),
        Screen::Audit => audit::render(app, theme, frame, body),
        Screen::Keys => keydb::render(app, theme, frame, body),
    }
    if let Some((text, is_error)) = bar {
        let style = if is_error {
            theme.alert()
        } else {
            theme.warn()
        };
        frame.render_widget(
            Paragraph::new(text)
                .style(style)
                .wrap(Wrap { trim: true })
                .block(Block::new().padding(Padding::horizontal(1))),
            bar_area,
        );
    }
    render_footer(app.context(), theme, frame, footer);
    if let Some(form) = &app.form {
        // Covered when anything over it has the keyboard (help, a confirm, a dialog).
        render_form(form, app.context() != Context::Form, theme, frame, area);
    }
    if let Some(menu) = &app.menu {
        render_menu(menu, theme, frame, area);
    }
    if app.help {
        render_help(app, theme, frame, area);
    }
    if let Some(info) = &app.info {
        render_info(info, theme, frame, area);
    }
    if let Some(reveal) = &app.reveal {
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
    if let Some(confirm) = &app.confirm {
        let text = Text::from(vec![
            Line::from(""),
            Line::from(confirm.effect.clone()),
            Line::from(""),
            {
                let (yes, no) = match confirm.then {
                    crate::app::Confirmable::OpenJob(_) => (" open the log   ", " stay here"),
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
}

/// Rows a wrapped one-liner needs inside a padding of one column each side (word wrapping
/// may need a little more; the text is cut rather than the screen).
fn lines_needed(text: &str, width: u16) -> u16 {
    let chars = u16::try_from(text.chars().count()).unwrap_or(u16::MAX);
    let room = width.saturating_sub(4).max(1);
    chars.div_ceil(room).max(1)
}

fn banner_text(app: &App) -> Option<String> {
    match (&app.link, &app.last_drop) {
        (Link::Up, _) => None,
        (Link::Down { retry_in, .. }, Some(reason)) => Some(format!(
            "Daemon unreachable — reconnecting in {:.1}s. {reason}",
            retry_in.as_secs_f32()
        )),
        (_, Some(reason)) => Some(format!("Daemon unreachable — reconnecting now. {reason}")),
        (_, None) => Some(format!("Connecting to keywardd at {} …", app.socket)),
    }
}

/// The error (with its code) or notice line, and whether it is an error.
fn bar_text(app: &App) -> Option<(String, bool)> {
    if let Some(error) = &app.error {
        let mut text = format!("Error {}", error.text());
        if let Some(id) = error.approval_id() {
            text.push_str(&format!(
                " — another administrator approves request {id} under Session › Pending approvals."
            ));
        }
        return Some((text, true));
    }
    app.notice.as_ref().map(|n| (n.clone(), false))
}

/// How much of each tab's name the strip shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TabNames {
    Full,
    /// The short form, the current tab in full.
    Short,
    /// The short form, the current tab too.
    AllShort,
    /// The number only, the current tab in full.
    Numbers,
}

/// The tab strip: `N Name` per tab, the current one highlighted and padded. When the names do
/// not fit, the strip drops the brand, then the padding, then shortens "dual control", then
/// uses each tab's short form (the current tab's last), then numbers only beside the current
/// tab's name.
fn render_tabs(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let current = match app.screen {
        Screen::JobLog => Screen::Jobs,
        other => other,
    };
    let tabs = |padded: bool, names: TabNames| {
        let mut spans = Vec::new();
        for (i, (screen, name, short)) in TABS.iter().enumerate() {
            let style = if *screen == current {
                theme.selected()
            } else if *screen != Screen::Session && !app.logged_in() {
                theme.dim()
            } else {
                theme.text()
            };
            let shown = match names {
                TabNames::AllShort => format!("{} {short}", i + 1),
                _ if *screen == current => format!("{} {name}", i + 1),
                TabNames::Full => format!("{} {name}", i + 1),
                TabNames::Short => format!("{} {short}", i + 1),
                TabNames::Numbers => format!("{}", i + 1),
            };
            let text = if padded || *screen == current {
                format!(" {shown} ")
            } else {
                shown
            };
            if !padded && i > 0 && *screen != current && TABS[i - 1].0 != current {
                spans.push(Span::raw(" "));
            }
            spans.push(Span::styled(text, style));
        }
        spans
    };
    let names: Vec<&str> = app.users().iter().map(|u| u.name.as_str()).collect();
    let dual = app.session.as_ref().is_some_and(|s| s.dual_control);
    let who = |long: bool| -> Line {
        if names.is_empty() {
            return Line::from(Span::styled("not logged in ", theme.dim()));
        }
        let (label, yes, no) = if long {
            (" · dual control ", "yes ", "no ")
        } else {
            (" · dual ", "yes ", "no ")
        };
        Line::from(vec![
            Span::raw(names.join(", ")),
            Span::raw(label),
            if dual {
                Span::styled(yes, theme.good())
            } else {
                Span::styled(no, theme.warn())
            },
        ])
    };
    let brand = || vec![Span::styled(" Keyward ", theme.title()), Span::raw("│")];
    // The widest layout that fits: brand, padded tabs and the long "who"; then tighter ones.
    let candidates = [
        (true, true, TabNames::Full, true),
        (true, false, TabNames::Full, true),
        (false, false, TabNames::Full, true),
        (false, false, TabNames::Full, false),
        (false, false, TabNames::Short, false),
        (false, false, TabNames::AllShort, false),
        (false, false, TabNames::Numbers, false),
    ];
    let width = usize::from(area.width);
    let mut chosen = None;
    for (with_brand, padded, names, long) in candidates {
        let mut left = if with_brand {
            brand()
        } else {
            vec![Span::raw(" ")]
        };
        left.extend(tabs(padded, names));
        let left = Line::from(left);
        let right = who(long);
        if left.width() + right.width() < width {
            chosen = Some((left, right));
            break;
        }
    }
    let (left, right) = chosen.unwrap_or_else(|| {
        let mut left = vec![Span::raw(" ")];
        left.extend(tabs(false, TabNames::Numbers));
        (Line::from(left), Line::from(""))
    });
    let who_width = u16::try_from(right.width()).unwrap_or(u16::MAX);
    let [left_area, right_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(who_width)]).areas(area);
    frame.render_widget(left, left_area);
    frame.render_widget(right, right_area);
}

fn render_footer(context: Context, theme: Theme, frame: &mut Frame, area: Rect) {
    let width = |b: &keys::Binding| b.keys.chars().count() + b.short.chars().count() + 4;
    let shown: Vec<&keys::Binding> = keys::bindings(context)
        .iter()
        .filter(|b| !b.short.is_empty())
        .collect();
    // The way to the help is always on the line, even when the other keys do not all fit (the
    // help lists them all): its room is set aside first, the others fill the rest in order.
    let help = shown.iter().position(|b| b.short == keys::HELP.short);
    let mut room = usize::from(area.width)
        .saturating_sub(1)
        .saturating_sub(help.map_or(0, |i| width(shown[i])));
    let mut spans = vec![Span::raw(" ")];
    for (i, binding) in shown.iter().enumerate() {
        if Some(i) != help {
            if width(binding) > room {
                room = 0;
                continue;
            }
            room -= width(binding);
        }
        spans.push(Span::styled(binding.keys, theme.key()));
        spans.push(Span::raw(format!(" {}   ", binding.short)));
    }
    frame.render_widget(Line::from(spans), area);
}

fn render_help(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let context = app.screen_context();
    let mut lines: Vec<Line> = keys::bindings(context)
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(format!("{:<9} ", b.keys), theme.key()),
                Span::raw(b.long),
            ])
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
    let title = format!("Help · {}", screen_name(context));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(dialog(&title, theme)),
        popup,
    );
}

fn screen_name(context: Context) -> &'static str {
    match context {
        Context::LoginForm => "Session: log in",
        Context::SessionUsers => "Session: logged in",
        Context::SessionPending => "Session: pending approvals",
        Context::Status => "Status",
        Context::Jobs | Context::JobsFilter => "Jobs",
        Context::JobLog => "Job log",
        Context::Users => "Users",
        Context::Credentials => "Credentials",
        Context::Audit | Context::AuditFilter => "Audit",
        Context::Keys | Context::KeysFilter => "Key database",
        Context::Info => "",
        Context::Form => "Form",
        Context::Reveal => "",
        Context::Confirm | Context::Help | Context::Menu => "",
    }
}

/// A context menu: one action a line with its key, the selected one marked with `▶`.
fn render_menu(menu: &crate::app::Menu, theme: Theme, frame: &mut Frame, area: Rect) {
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
fn render_info(info: &crate::app::Info, theme: Theme, frame: &mut Frame, area: Rect) {
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
fn render_form(
    form: &crate::input::Form,
    covered: bool,
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
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
        let shown: String = {
            let text = field.shown();
            let skip = text.chars().count().saturating_sub(width);
            text.chars().skip(skip).collect()
        };
        let focused = i == form.focus;
        let pad = width.saturating_sub(shown.chars().count());
        let filler = match field.kind {
            crate::input::FieldKind::Text(_) => "_".repeat(pad),
            crate::input::FieldKind::Choice { .. } | crate::input::FieldKind::Check(_) => {
                String::new()
            }
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    "{}{:<w$}",
                    if focused { "▶ " } else { "  " },
                    field.label,
                    w = label_width - 2
                ),
                theme.label(),
            ),
            Span::styled(
                format!("{shown}{filler}"),
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
        if let Some(crate::input::FieldKind::Text(field)) =
            form.fields.get(form.focus).map(|f| &f.kind)
        {
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
fn render_tabbed_form(
    form: &crate::input::Form,
    covered: bool,
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    use crate::input::FieldKind;
    const LABEL: usize = 19;
    const VALUE: usize = 22;
    let fields = form.on_tab();
    let height = u16::try_from(fields.len() + 7).unwrap_or(u16::MAX);
    let popup = centered(area, 78, height);
    frame.render_widget(Clear, popup);
    let block = dialog(&form.title, theme);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
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
    for &i in &fields {
        let field = &form.fields[i];
        let enabled = form.enabled(i);
        let focused = i == form.focus && !form.on_tabs;
        let (shown, filler) = match &field.kind {
            FieldKind::Text(_) if !enabled => ("off".to_string(), " ".repeat(VALUE - 3)),
            FieldKind::Text(_) => {
                let text = field.shown();
                let skip = text.chars().count().saturating_sub(VALUE);
                let shown: String = text.chars().skip(skip).collect();
                let pad = VALUE.saturating_sub(shown.chars().count());
                (shown, "_".repeat(pad))
            }
            FieldKind::Choice { .. } | FieldKind::Check(_) => (field.shown(), String::new()),
        };
        let mut spans = vec![
            Span::styled(
                format!(
                    "{}{:<w$}",
                    if focused { "▶ " } else { "  " },
                    field.label,
                    w = LABEL - 2
                ),
                theme.label(),
            ),
            Span::styled(
                format!("{shown}{filler}"),
                if focused {
                    theme.selected()
                } else if enabled {
                    theme.text()
                } else {
                    theme.dim()
                },
            ),
        ];
        if let Some(reason) = form.reason(i) {
            spans.push(Span::styled(format!(" ✗ {reason}"), theme.bad()));
        } else if !field.note.is_empty() {
            spans.push(Span::styled(format!(" {}", field.note), theme.dim()));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(form.hint.clone(), theme.dim())));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    if covered || form.on_tabs {
        return;
    }
    let Some(row) = fields.iter().position(|&i| i == form.focus) else {
        return;
    };
    if let Some(FieldKind::Text(field)) = form.fields.get(form.focus).map(|f| &f.kind) {
        if form.enabled(form.focus) {
            let column = LABEL + field.chars().min(VALUE);
            frame.set_cursor_position(Position::new(
                inner.x + u16::try_from(column).unwrap_or(0),
                inner.y + u16::try_from(row + 3).unwrap_or(0),
            ));
        }
    }
}

/// A list table: a header, the selected row marked with `▶ ` (readable without colour).
pub(crate) fn table<'a, const N: usize>(
    header: [&'a str; N],
    widths: [Constraint; N],
    rows: impl IntoIterator<Item = Row<'a>>,
    theme: Theme,
) -> Table<'a> {
    Table::new(rows, widths)
        .header(Row::new(header).style(theme.label()))
        .row_highlight_style(theme.selected())
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always)
}

fn dialog(title: &str, theme: Theme) -> Block<'static> {
    Block::bordered()
        .padding(Padding::horizontal(1))
        .title(Span::styled(format!(" {title} "), theme.title()))
        .border_style(theme.focus_border())
}

/// A block with a title, its border marked when it has the focus.
pub(crate) fn pane(title: String, focused: bool, theme: Theme) -> Block<'static> {
    let block = Block::bordered()
        .title(Span::styled(format!(" {title} "), theme.label()))
        .padding(Padding::horizontal(1));
    if focused {
        block.border_style(theme.focus_border())
    } else {
        block
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

/// A progress bar drawn with characters, so it reads the same without colour.
pub(crate) fn gauge_text(percent: u8, width: usize) -> String {
    let percent = percent.min(100);
    let filled = usize::from(percent) * width / 100;
    format!(
        "{}{} {percent:>3}%",
        "█".repeat(filled),
        "░".repeat(width - filled)
    )
}

/// A `label  value` line for the information panes.
pub(crate) fn field<'a>(label: &'a str, value: Span<'a>, theme: Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{label:<11}"), theme.label()),
        value,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_footer_always_shows_the_way_to_help_at_80_columns() {
        for context in crate::keys::tests::ALL {
            let mut terminal =
                ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 1)).unwrap();
            terminal
                .draw(|frame| render_footer(context, Theme::MONO, frame, frame.area()))
                .unwrap();
            let line: String = terminal
                .backend()
                .buffer()
                .content()
                .iter()
                .map(|cell| cell.symbol())
                .collect();
            // Every context but a dialog that closes on its own keys has a way to help.
            let dialog = matches!(
                context,
                Context::Confirm | Context::Help | Context::Reveal | Context::Info | Context::Menu
            );
            let help = keys::bindings(context)
                .iter()
                .find(|b| b.short == keys::HELP.short);
            match help {
                Some(binding) => {
                    let shown = format!("{} help", binding.keys);
                    assert!(line.contains(&shown), "{context:?}: {line}");
                }
                None => assert!(dialog, "{context:?} has no help binding"),
            }
            assert!(!line.trim().is_empty(), "{context:?}");
        }
    }

    #[test]
    fn gauge_text_fills_in_proportion() {
        assert_eq!(gauge_text(0, 10), "░░░░░░░░░░   0%");
        assert_eq!(gauge_text(50, 10), "█████░░░░░  50%");
        assert_eq!(gauge_text(100, 10), "██████████ 100%");
        assert_eq!(gauge_text(250, 4), "████ 100%");
    }
}
