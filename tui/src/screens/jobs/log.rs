//! One job's log as far as it has been read: the job's state, step, progress and error above,
//! the lines below, following the end while the job runs (↑↓ scroll, G follows again).

use keyward_proto::{JobLogView, JobState, JobView, Op, Request};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{Purpose, Shell};
use crate::keys::{Action, HELP, Keymap, MOVE, QUIT_NOW, SCREEN_KEYS, b, ch, key, refresh};
use crate::screens::move_selection;
use crate::theme::Theme;
use crate::ui::{field, gauge_text, pane};

pub const JOB_LOG: Keymap = Keymap {
    name: "job log",
    title: "Job log",
    bindings: &[
        b(
            MOVE,
            "scroll",
            "Scroll the log (PgUp/PgDn; G follows the end)",
        ),
        refresh("Ask for new lines now"),
        b(
            &[
                &[ch('q', Action::Back)],
                &[key(crossterm::event::KeyCode::Esc, Action::Back)],
            ],
            "back",
            "Back to the job list",
        ),
    ],
    shared: &[HELP, QUIT_NOW, SCREEN_KEYS],
};

#[derive(Debug)]
pub struct JobLog {
    pub id: u64,
    pub job: Option<JobView>,
    pub state: JobState,
    pub lines: Vec<String>,
    /// Ask for lines from here next.
    pub next: usize,
    /// The line the view ends at (the last shown, unless the lines after it are needed to
    /// fill the pane); `None` follows the end.
    pub scroll: Option<usize>,
}

impl JobLog {
    /// The log of job `id` (known from the list, or only by its id), read from its start.
    pub(super) fn open(id: u64, job: Option<JobView>, shell: &mut Shell) -> Self {
        shell.send_as(
            Purpose::new(Op::JobLog).tag(id),
            Request::JobLog { id, from: Some(0) },
        );
        Self {
            id,
            state: job.as_ref().map_or(JobState::Queued, |j| j.state),
            job,
            lines: Vec::new(),
            next: 0,
            scroll: None,
        }
    }

    pub fn finished(&self) -> bool {
        self.state.is_done()
    }

    /// The lines after those read, and the job's progress while it runs.
    pub(super) fn poll(&self, shell: &mut Shell) {
        let id = self.id;
        shell.send_once_as(
            Purpose::new(Op::JobLog).tag(id),
            Request::JobLog {
                id,
                from: Some(self.next),
            },
        );
        if !self.finished() {
            shell.send_once_as(Purpose::new(Op::JobShow).tag(id), Request::JobShow { id });
        }
    }

    pub(super) fn arrived(&mut self, view: &JobLogView) {
        // Lines we already have (a repeated poll) are not added twice.
        if view.from <= self.next && view.next > self.next {
            let skip = self.next - view.from;
            self.lines.extend(view.lines.iter().skip(skip).cloned());
            self.next = view.next;
        }
        self.state = view.state;
    }

    pub(super) fn scroll(&mut self, action: Action) {
        let last = self.lines.len().saturating_sub(1);
        let mut at = self.scroll.unwrap_or(last);
        if move_selection(&mut at, self.lines.len(), action) {
            // Scrolling to the last line means following it again.
            self.scroll = (at != last).then_some(at);
        }
    }

    pub(super) fn draw(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
        let [head_area, log_area] =
            Layout::vertical([Constraint::Length(6), Constraint::Min(3)]).areas(area);

        let mut head = Vec::new();
        match &self.job {
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
                    Span::styled(self.state.as_str(), theme.job_state(self.state)),
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
                Span::styled(self.state.as_str(), theme.job_state(self.state)),
                theme,
            )),
        }
        let title = match &self.job {
            Some(job) => format!("Job {} · {} {}", self.id, job.kind, job.target),
            None => format!("Job {}", self.id),
        };
        frame.render_widget(
            Paragraph::new(head).block(pane(title, false, theme)),
            head_area,
        );

        let block = pane(
            match self.scroll {
                None if self.finished() => format!("Log · {} line(s)", self.lines.len()),
                None => format!("Log · {} line(s) · following", self.lines.len()),
                Some(at) => format!("Log · line {} of {}", at + 1, self.lines.len()),
            },
            true,
            theme,
        );
        let inner = block.inner(log_area);
        frame.render_widget(block, log_area);
        let height = usize::from(inner.height);
        let total = self.lines.len();
        // Following shows the last lines; scrolled, the chosen line is the last one shown (or, near
        // the top, the lines after it fill the pane). Long lines wrap (continuations indented), so
        // nothing of a step's detail is cut off.
        let end = self.scroll.map_or(total, |at| (at + 1).min(total));
        let width = usize::from(inner.width);
        let mut lines: Vec<Line> = Vec::with_capacity(height);
        'back: for line in self.lines[..end].iter().rev() {
            for row in wrap_log_line(line, width).into_iter().rev() {
                if lines.len() == height {
                    break 'back;
                }
                lines.push(Line::from(row));
            }
        }
        lines.reverse();
        'forward: for line in &self.lines[end..] {
            for row in wrap_log_line(line, width) {
                if lines.len() == height {
                    break 'forward;
                }
                lines.push(Line::from(row));
            }
        }
        if total == 0 {
            let waiting = if shell.awaiting(Purpose::new(Op::JobLog).tag(self.id)) {
                "Reading the log …"
            } else {
                "The log is empty."
            };
            lines.push(Line::from(Span::styled(waiting, theme.dim())));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }
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
