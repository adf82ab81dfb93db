//! Drawing: a pure function of the [`App`] state. The frame is the tab bar, an optional
//! "daemon unreachable" banner, the screen (each draws itself), an optional error or notice
//! bar, and the footer with the keys that work here; dialogs draw over it (`dialogs.rs`).
//! The widgets the screens share are here too.

mod dialogs;

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, HighlightSpacing, Padding, Paragraph, Row, Table, TableState, Wrap};

use crate::app::dialogs::FORM;
use crate::app::{App, Shell};
use crate::client::Link;
use crate::keys::{self, Keymap};
use crate::screens::Filter;
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
    let banner = banner_text(&app.shell);
    let banner_height = banner
        .as_ref()
        .map_or(0, |text| lines_needed(text, area.width).min(2));
    let bar = bar_text(&app.shell);
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
    app.current().draw(&app.shell, theme, frame, body);
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
    render_footer(app.context(), app.tab_names().len(), theme, frame, footer);
    let shell = &app.shell;
    if let Some(form) = &shell.form {
        // Covered when anything over it has the keyboard (help, a confirm, a dialog).
        dialogs::render_form(form, app.context() != &FORM, theme, frame, area);
    }
    if let Some(menu) = &shell.menu {
        dialogs::render_menu(menu, theme, frame, area);
    }
    if shell.help {
        dialogs::render_help(app.screen_context(), &app.tab_names(), theme, frame, area);
    }
    if let Some(info) = &shell.info {
        dialogs::render_info(info, theme, frame, area);
    }
    if let Some(reveal) = &shell.reveal {
        dialogs::render_reveal(reveal, theme, frame, area);
    }
    if let Some(confirm) = &shell.confirm {
        dialogs::render_confirm(confirm, theme, frame, area);
    }
}

pub(crate) fn lines_needed(text: &str, width: u16) -> u16 {
    let chars = u16::try_from(text.chars().count()).unwrap_or(u16::MAX);
    let room = width.saturating_sub(4).max(1);
    chars.div_ceil(room).max(1)
}

fn banner_text(shell: &Shell) -> Option<String> {
    match (&shell.link, &shell.last_drop) {
        (Link::Up, _) => None,
        (Link::Down { retry_in, .. }, Some(reason)) => Some(format!(
            "Daemon unreachable — reconnecting in {:.1}s. {reason}",
            retry_in.as_secs_f32()
        )),
        (_, Some(reason)) => Some(format!("Daemon unreachable — reconnecting now. {reason}")),
        (_, None) => Some(format!("Connecting to keywardd at {} …", shell.socket)),
    }
}

/// The error (with its code) or notice line, and whether it is an error.
fn bar_text(shell: &Shell) -> Option<(String, bool)> {
    if let Some(error) = &shell.error {
        let mut text = format!("Error {}", error.text());
        if let Some(id) = error.approval_id() {
            text.push_str(&format!(
                " — another administrator approves request {id} under Session › Pending approvals."
            ));
        }
        return Some((text, true));
    }
    shell.notice.as_ref().map(|n| (n.clone(), false))
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
    let shell = &app.shell;
    let all: Vec<_> = app.tabs().collect();
    let tabs = |padded: bool, names: TabNames| {
        let mut spans = Vec::new();
        for (i, &(tab, current, needs_login)) in all.iter().enumerate() {
            let style = if current {
                theme.selected()
            } else if needs_login && !shell.logged_in() {
                theme.dim()
            } else {
                theme.text()
            };
            let (name, short) = (tab.name, tab.short);
            let shown = match names {
                TabNames::AllShort => format!("{} {short}", i + 1),
                _ if current => format!("{} {name}", i + 1),
                TabNames::Full => format!("{} {name}", i + 1),
                TabNames::Short => format!("{} {short}", i + 1),
                TabNames::Numbers => format!("{}", i + 1),
            };
            let text = if padded || current {
                format!(" {shown} ")
            } else {
                shown
            };
            if !padded && i > 0 && !current && !all[i - 1].1 {
                spans.push(Span::raw(" "));
            }
            spans.push(Span::styled(text, style));
        }
        spans
    };
    let names: Vec<&str> = shell.users().iter().map(|u| u.name.as_str()).collect();
    let dual = shell.dual_control();
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

fn render_footer(context: &Keymap, tabs: usize, theme: Theme, frame: &mut Frame, area: Rect) {
    let shown: Vec<(String, &str)> = context
        .footer()
        .map(|b| (b.keys_text(tabs), b.short))
        .collect();
    let width = |(keys, short): &(String, &str)| keys.chars().count() + short.chars().count() + 4;
    // The way to the help is always on the line, even when the other keys do not all fit (the
    // help lists them all): its room is set aside first, the others fill the rest in order.
    let help = shown
        .iter()
        .position(|(_, short)| *short == keys::HELP.short);
    let mut room = usize::from(area.width)
        .saturating_sub(1)
        .saturating_sub(help.map_or(0, |i| width(&shown[i])));
    let mut spans = vec![Span::raw(" ")];
    for (i, binding) in shown.iter().enumerate() {
        if Some(i) != help {
            if width(binding) > room {
                room = 0;
                continue;
            }
            room -= width(binding);
        }
        spans.push(Span::styled(binding.0.clone(), theme.key()));
        spans.push(Span::raw(format!(" {}   ", binding.1)));
    }
    frame.render_widget(Line::from(spans), area);
}

/// Draws a list's table in `area`: `rows` under `header`, the `selected` row marked.
pub(crate) fn table<'a, const N: usize>(
    header: [&'a str; N],
    widths: [Constraint; N],
    rows: impl IntoIterator<Item = Row<'a>>,
    selected: Option<usize>,
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.label()))
        .row_highlight_style(theme.selected())
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

/// Draws `lines` in `block`, wrapped to its width.
pub(crate) fn wrapped<'a>(
    lines: impl Into<Text<'a>>,
    block: Block<'a>,
    frame: &mut Frame,
    area: Rect,
) {
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

pub(crate) fn dialog(title: &str, theme: Theme) -> Block<'static> {
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

pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
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

/// A list's pane (focused), with the filter line at its foot while the filter is typed: `/`
/// and the text. Gives the room left for the list.
pub(crate) fn filtered_pane(
    title: String,
    filter: &Filter,
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) -> Rect {
    let block = pane(title, true, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [list_area, filter_area] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(u16::from(filter.typing)),
    ])
    .areas(inner);
    if filter.typing {
        frame.render_widget(
            Line::from(vec![
                Span::styled("/", theme.key()),
                Span::styled(format!("{}_", filter.text), theme.selected()),
            ]),
            filter_area,
        );
    }
    list_area
}

/// A dim note where a list would be: it is being asked for, there is none, nothing matches.
pub(crate) fn note(text: &str, theme: Theme, frame: &mut Frame, area: Rect) {
    frame.render_widget(
        Paragraph::new(Span::styled(text, theme.dim())).wrap(Wrap { trim: false }),
        area,
    );
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

/// The time of day of an RFC 3339 time (`2026-11-24T10:10:00.000Z` → `10:10:00`), or the
/// text as it is.
pub(crate) fn time_of_day(time: &str) -> &str {
    time.get(11..19).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_footer_always_shows_the_way_to_help_at_80_columns() {
        let dialogs = crate::app::dialogs::KEYMAPS;
        for context in crate::keys::tests::all() {
            let mut terminal =
                ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 1)).unwrap();
            terminal
                .draw(|frame| render_footer(context, 7, Theme::MONO, frame, frame.area()))
                .unwrap();
            let line: String = terminal
                .backend()
                .buffer()
                .content()
                .iter()
                .map(|cell| cell.symbol())
                .collect();
            // Every context but a dialog that closes on its own keys has a way to help.
            let dialog = dialogs.contains(&context) && context != &FORM;
            let help = context.footer().find(|b| b.short == keys::HELP.short);
            match help {
                Some(binding) => {
                    let shown = format!("{} help", binding.keys_text(7));
                    assert!(line.contains(&shown), "{}: {line}", context.name);
                }
                None => assert!(dialog, "{} has no help binding", context.name),
            }
            assert!(!line.trim().is_empty(), "{}", context.name);
        }
    }

    #[test]
    fn times_are_shortened_to_the_minute() {
        assert_eq!(short_time("2026-11-24T10:00:05.000Z"), "2026-11-24 10:00");
        assert_eq!(short_time("never"), "never");
        assert_eq!(time_of_day("2026-11-24T10:10:00.000Z"), "10:10:00");
    }

    #[test]
    fn gauge_text_fills_in_proportion() {
        assert_eq!(gauge_text(0, 10), "░░░░░░░░░░   0%");
        assert_eq!(gauge_text(50, 10), "█████░░░░░  50%");
        assert_eq!(gauge_text(100, 10), "██████████ 100%");
        assert_eq!(gauge_text(250, 4), "████ 100%");
    }
}
