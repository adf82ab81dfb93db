//! Jobs: the list with each job's state and a progress gauge, and one job's log, followed
//! live while the job runs.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap};

use super::{field, gauge_text, pane};
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
            Cell::from(job.kind.clone()),
            Cell::from(job.target.clone()),
            Cell::from(Span::styled(job.state.clone(), theme.state(&job.state))),
            Cell::from(Span::styled(gauge_text(job.progress, 8), theme.gauge())),
            Cell::from(job.step.clone().unwrap_or_else(|| "-".into())),
        ])
    });
    let header =
        Row::new(["ID", "Kind", "Target", "State", "Progress", "Step"]).style(theme.label());
    let table = Table::new(
        rows,
        [
            Constraint::Length(4),
            Constraint::Length(6),
            Constraint::Length(16),
            Constraint::Length(9),
            Constraint::Length(13),
            Constraint::Min(8),
        ],
    )
    .header(header)
    .row_highlight_style(theme.selected())
    // The marker shows the selection without colour, too.
    .highlight_symbol("▶ ")
    .highlight_spacing(HighlightSpacing::Always);
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
                head.push(field("Key", Span::raw(format!("{key} (AWS {aws})")), theme));
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
    // Following shows the last lines; scrolled, the chosen line is the last one shown.
    let end = match log.scroll {
        None => total,
        Some(at) => (at + 1).max(height.min(total)).min(total),
    };
    let start = end.saturating_sub(height);
    let mut lines: Vec<Line> = log.lines[start..end]
        .iter()
        .map(|l| Line::from(l.as_str()))
        .collect();
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
