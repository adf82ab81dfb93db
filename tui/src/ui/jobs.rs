//! Jobs: the list with each job's state and a progress gauge, and one job's log, followed
//! live while the job runs.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, TableState, Wrap};

use super::{field, gauge_text, pane, table};
use crate::app::{App, Purpose};
use crate::theme::Theme;

pub fn render_list(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let jobs = &app.jobs;
    let visible = jobs.visible();
    let mut title = format!("Jobs ({}", visible.len());
    if !jobs.filter.is_empty() {
        title.push_str(&format!(
            " of {}, filter \"{}\"",
            jobs.list.len(),
            jobs.filter
        ));
    }
    title.push(')');
    let block = pane(title, true, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [table_area, filter_area] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(u16::from(jobs.filtering)),
    ])
    .areas(inner);
    if jobs.filtering {
        frame.render_widget(
            Line::from(vec![
                Span::styled("/", theme.key()),
                Span::styled(format!("{}_", jobs.filter), theme.selected()),
            ]),
            filter_area,
        );
    }

    if visible.is_empty() {
        let text = if !jobs.loaded {
            if app.awaiting(Purpose::JobList) {
                "Asking the daemon for the jobs …".to_string()
            } else {
                "No job list yet: press r to ask the daemon.".to_string()
            }
        } else if jobs.list.is_empty() {
            "No jobs yet. A job appears when a group rotates or a key is synchronised.".to_string()
        } else {
            format!("No job matches \"{}\".", jobs.filter)
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, theme.dim())).wrap(Wrap { trim: false }),
            table_area,
        );
        return;
    }

    let rows = visible.iter().map(|job| {
        Row::new(vec![
            Cell::from(job.id.to_string()),
            Cell::from(job.kind.as_str()),
            Cell::from(job.target.clone()),
            Cell::from(Span::styled(
                job.state.as_str(),
                theme.state(job.state.as_str()),
            )),
            Cell::from(Span::styled(gauge_text(job.progress, 8), theme.gauge())),
            Cell::from(job.step.clone().unwrap_or_else(|| "-".into())),
        ])
    });
    let table = table(
        ["ID", "Kind", "Target", "State", "Progress", "Step"],
        [
            Constraint::Length(4),
            Constraint::Length(6),
            Constraint::Length(16),
            Constraint::Length(9),
            Constraint::Length(13),
            Constraint::Min(8),
        ],
        rows,
        theme,
    );
    let mut state = TableState::default().with_selected(Some(jobs.selected));
    frame.render_stateful_widget(table, table_area, &mut state);
}

pub fn render_log(app: &App, theme: Theme, frame: &mut Frame, area: Rect) {
    let Some(log) = &app.job_log else {
        return;
    };
    let [head_area, log_area] =
        Layout::vertical([Constraint::Length(6), Constraint::Min(3)]).areas(area);

    let mut head = Vec::new();
    match &log.job {
        Some(job) => {
            let step = match (
                &job.step,
                job.steps.iter().position(|s| Some(s) == job.step.as_ref()),
            ) {
                (Some(step), Some(i)) => format!("{step} ({} of {})", i + 1, job.steps.len()),
                (Some(step), None) => step.clone(),
                (None, _) => "-".into(),
            };
            head.push(Line::from(vec![
                Span::styled(format!("{:<11}", "State"), theme.label()),
                Span::styled(log.state.clone(), theme.state(&log.state)),
                Span::raw(format!("  step {step}")),
            ]));
            head.push(field(
                "Progress",
                Span::styled(gauge_text(job.progress, 40), theme.gauge()),
                theme,
            ));
            match &job.error {
                Some(error) => head.push(field(
                    "Error",
                    Span::styled(error.clone(), theme.bad()),
                    theme,
                )),
                None => head.push(field(
                    "Requested",
                    Span::raw(format!(
                        "by {} at {}",
                        job.requested_by.join(" and "),
                        job.created
                    )),
                    theme,
                )),
            }
            if let Some(key) = &job.key {
                let aws = job.aws_key_id.as_deref().unwrap_or("-");
                head.push(field("Key", Span::raw(format!("AWS {aws} · {key}")), theme));
            }
        }
        None => head.push(field(
            "State",
            Span::styled(log.state.clone(), theme.state(&log.state)),
            theme,
        )),
    }
    let title = match &log.job {
        Some(job) => format!("Job {} · {} {}", log.id, job.kind, job.target),
        None => format!("Job {}", log.id),
    };
    frame.render_widget(
        Paragraph::new(head).block(pane(title, false, theme)),
        head_area,
    );

    let block = pane(
        match log.scroll {
            None if log.finished() => format!("Log · {} line(s)", log.lines.len()),
            None => format!("Log · {} line(s) · following", log.lines.len()),
            Some(at) => format!("Log · line {} of {}", at + 1, log.lines.len()),
        },
        true,
        theme,
    );
    let inner = block.inner(log_area);
    frame.render_widget(block, log_area);
    let height = usize::from(inner.height);
    let total = log.lines.len();
    // Following shows the last lines; scrolled, the chosen line is the last one shown (or, near
    // the top, the lines after it fill the pane). Long lines wrap (continuations indented), so
    // nothing of a step's detail is cut off.
    let end = log.scroll.map_or(total, |at| (at + 1).min(total));
    let width = usize::from(inner.width);
    let mut lines: Vec<Line> = Vec::with_capacity(height);
    'back: for line in log.lines[..end].iter().rev() {
        for row in wrap_log_line(line, width).into_iter().rev() {
            if lines.len() == height {
                break 'back;
            }
            lines.push(Line::from(row));
        }
    }
    lines.reverse();
    'forward: for line in &log.lines[end..] {
        for row in wrap_log_line(line, width) {
            if lines.len() == height {
                break 'forward;
            }
            lines.push(Line::from(row));
        }
    }
    if total == 0 {
        let waiting = if app.awaiting(Purpose::JobLog(log.id)) {
            "Reading the log …"
        } else {
            "The log is empty."
        };
        lines.push(Line::from(Span::styled(waiting, theme.dim())));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// One log line as rows of at most `width` characters, broken after a space where one is near
/// the end of the row; rows after the first are indented by two spaces so a wrapped line reads
/// as one entry.
fn wrap_log_line(line: &str, width: usize) -> Vec<String> {
    const INDENT: &str = "  ";
    let mut rest: Vec<char> = line.chars().collect();
    if width <= INDENT.len() * 2 || rest.len() <= width {
        return vec![line.to_owned()];
    }
    let mut rows = Vec::new();
    let mut room = width;
    while rest.len() > room {
        let cut = rest[..room]
            .iter()
            .rposition(|c| *c == ' ')
            .filter(|at| *at >= room / 2)
            .map_or(room, |at| at + 1);
        let row: String = rest.drain(..cut).collect();
        rows.push(if rows.is_empty() {
            row
        } else {
            format!("{INDENT}{row}")
        });
        room = width - INDENT.len();
    }
    rows.push(format!("{INDENT}{}", rest.iter().collect::<String>()));
    rows
}

#[cfg(test)]
mod tests {
    use super::wrap_log_line;

    #[test]
    fn long_log_lines_wrap_with_an_indent_and_lose_nothing() {
        assert_eq!(wrap_log_line("short", 10), vec!["short"]);
        assert_eq!(wrap_log_line("0123456789", 10), vec!["0123456789"]);
        let rows = wrap_log_line("0123456789abcdefghijklmnopq", 10);
        assert_eq!(rows, vec!["0123456789", "  abcdefgh", "  ijklmnop", "  q"]);
        let joined: String = rows.iter().map(|r| r.trim_start()).collect();
        assert_eq!(joined, "0123456789abcdefghijklmnopq");
        // Broken after a space near the end of the row, the words stay whole.
        let rows = wrap_log_line("step 4: done; key wrapped inside", 12);
        assert_eq!(
            rows,
            vec!["step 4: ", "  done; key ", "  wrapped ", "  inside"]
        );
        assert_eq!(
            rows.concat().replace("  ", ""),
            "step 4: done; key wrapped inside"
        );
        assert_eq!(wrap_log_line("abc", 0), vec!["abc"]);
    }
}
