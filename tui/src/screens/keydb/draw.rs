//! Drawing the key database: groups (▾ open, ▸ folded) with their alias, key count, region and
//! schedule; under each, its keys: ★ on the one the alias points at, id, state, fingerprint
//! (the HSM's check value), AWS key id, created, valid to and `!` when it expires soon.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{HighlightSpacing, List, ListItem, ListState};

use super::{KeyDb, TreeRow};
use crate::app::{Purpose, Shell};
use crate::theme::Theme;
use crate::ui::{field, filtered_pane, note, pane, short_time, wrapped};
use keyward_proto::Op;

pub(super) fn render(db: &KeyDb, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
    let [tree_area, schedule_area] =
        Layout::vertical([Constraint::Min(5), Constraint::Length(6)]).areas(area);
    render_tree(db, shell, theme, frame, tree_area);
    render_schedule(db, shell, theme, frame, schedule_area);
}

/// The schedule of the selected row's group (`schedule_list`): next due and the rotation
/// period, the last success, why it waits when it is due, and how the last rotation ended
/// (last, as it may take two lines).
fn render_schedule(db: &KeyDb, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
    let Some(group) = db.selected_group() else {
        frame.render_widget(pane("Schedule".into(), false, theme), area);
        return;
    };
    let block = pane(format!("Schedule · {}", group.name), false, theme);
    let lines = match db.selected_schedule() {
        Some(s) => {
            let next = match s.next_due.as_str() {
                "now" => Span::styled("now, overdue", theme.warn()),
                "-" => Span::styled("-", theme.dim()),
                due => Span::raw(short_time(due)),
            };
            let last_success = s
                .last_success
                .as_deref()
                .map_or_else(|| "never".to_string(), short_time);
            let result = match s.last_result.as_deref() {
                Some(result) if result.contains("failed") => {
                    Span::styled(result.to_string(), theme.bad())
                }
                Some(result) => Span::raw(result.to_string()),
                None => Span::styled("no rotation yet", theme.dim()),
            };
            let delay = match s.delay.as_deref() {
                Some(delay) => Span::styled(format!("waits: {delay}"), theme.warn()),
                None => Span::styled("not delayed", theme.dim()),
            };
            vec![
                Line::from(vec![
                    Span::styled(format!("{:<11}", "Next due"), theme.label()),
                    next,
                    Span::raw(format!(
                        " · every {} · last success {last_success}",
                        s.rotate_every
                    )),
                ]),
                field("Delay", delay, theme),
                field("Last", result, theme),
            ]
        }
        None if !db.schedule_loaded => {
            let text = if shell.awaiting(Purpose::new(Op::ScheduleList)) {
                "Asking the daemon for the schedule …"
            } else {
                "No schedule yet: press r to ask the daemon."
            };
            vec![Line::from(Span::styled(text, theme.dim()))]
        }
        None => vec![Line::from(Span::styled(
            format!(
                "Not scheduled (rotate_every {}): it rotates only when forced.",
                group.rotate_every
            ),
            theme.dim(),
        ))],
    };
    wrapped(lines, block, frame, area);
}

fn render_tree(db: &KeyDb, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
    let rows = db.rows();
    let mut title = format!(
        "Key database ({} groups, {} keys",
        db.groups.len(),
        db.keys.len()
    );
    if !db.filter.text.is_empty() {
        title.push_str(&format!(", filter \"{}\"", db.filter.text));
    }
    title.push(')');
    let rest = filtered_pane(title, &db.filter, theme, frame, area);
    let [head_area, list_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(rest);
    if rows.is_empty() {
        let text = if !db.loaded() {
            if shell.awaiting(Purpose::new(Op::GroupList)) {
                "Asking the daemon for the key groups …".to_string()
            } else {
                "No groups yet: press r to ask the daemon.".to_string()
            }
        } else if db.groups.is_empty() {
            "No key groups yet. A group is created on the serial port (group create).".to_string()
        } else {
            format!("Nothing matches \"{}\".", db.filter.text)
        };
        note(&text, theme, frame, rest);
        return;
    }
    frame.render_widget(
        Line::from(Span::styled(
            format!(
                "  {:<20}{:<9}{:<9}{:<11}{:<11}{}",
                "Group / key", "State", "KCV", "AWS key", "Created", "Valid to"
            ),
            theme.label(),
        )),
        head_area,
    );
    let items: Vec<ListItem> = rows.iter().map(|row| item(row, theme)).collect();
    let list = List::new(items)
        .highlight_style(theme.selected())
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = ListState::default().with_selected(Some(db.selected));
    frame.render_stateful_widget(list, list_area, &mut state);
}

fn item<'a>(row: &TreeRow<'a>, theme: Theme) -> ListItem<'a> {
    match row {
        TreeRow::Group { group, open, keys } => {
            let arrow = if *open { "▾" } else { "▸" };
            let schedule = if group.rotate_every == "off" {
                "no schedule".to_string()
            } else {
                format!("every {}", group.rotate_every)
            };
            ListItem::new(Line::from(vec![
                Span::styled(format!("{arrow} {}", group.name), theme.title()),
                Span::styled(
                    format!(
                        "  {} · {} key{} · {} · {schedule}",
                        group.alias,
                        keys,
                        if *keys == 1 { "" } else { "s" },
                        group.region
                    ),
                    theme.dim(),
                ),
            ]))
        }
        TreeRow::Key(key) => {
            let star = if key.alias.is_some() { "★" } else { " " };
            let aws = key
                .aws_key_id
                .as_deref()
                .map_or("-".into(), |id| cut(id, 9));
            let mut spans = vec![
                Span::styled(format!(" {star} "), theme.good()),
                Span::raw(format!("{:<17}", cut(&key.id, 16))),
                Span::styled(
                    format!("{:<9}", key.state.as_str()),
                    theme.key_state(key.state),
                ),
                Span::raw(format!(
                    "{:<9}{:<11}{:<11}",
                    cut(&key.fingerprint, 8),
                    aws,
                    cut(&key.created, 10)
                )),
                Span::raw(cut(&key.valid_to, 10)),
            ];
            if key.expires_soon {
                spans.push(Span::styled(" !", theme.warn()));
            }
            ListItem::new(Line::from(spans))
        }
    }
}

/// At most `width` characters: the text, or its start and `…`. A date-time keeps its date.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 10 && text.as_bytes().get(10) == Some(&b'T') {
        return text.chars().take(10).collect();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cut_with_an_ellipsis_and_times_to_the_date() {
        assert_eq!(cut("forever", 10), "forever");
        assert_eq!(cut("2026-11-24T10:00:05.000Z", 10), "2026-11-24");
        assert_eq!(cut("1234abcd-12ab-34cd-56ef-1234567890ab", 9), "1234abcd…");
    }
}
