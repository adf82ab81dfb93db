//! Jobs: the list with each job's state and a progress gauge (polled while one runs), filtered
//! with `/`; `y` retries a failed job; Enter opens a job's log (`log.rs`), followed live while
//! the job runs. A job another screen started opens here by its id.

mod log;

use keyward_proto::{JobState, JobView, Op, Reply, Request};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row};

pub use log::{JOB_LOG, JobLog};

use super::{Filter, Screen, Tab};
use crate::app::{Purpose, Shell};
use crate::keys::{Action, ENTER, Keymap, MOVE, b, ch, filter, filter_keys, refresh};
use crate::theme::Theme;
use crate::ui::{filtered_pane, gauge_text, note, table};

pub const LIST: Keymap = Keymap::screen(
    "jobs",
    "Jobs",
    &[
        b(MOVE, "move", "Select a job (PgUp/PgDn, g/G: first/last)"),
        b(ENTER, "log", "Open the job's log (live while it runs)"),
        b(
            &[&[ch('y', Action::Retry)]],
            "retry",
            "Retry a failed job from the step that failed (asks first)",
        ),
        filter("Show only jobs whose id, kind, target, state or step match"),
        refresh("Ask for the job list again"),
    ],
);

pub const FILTER: Keymap = Keymap::typing(
    "jobs filter",
    "Jobs",
    &filter_keys("Keep the filter and go back to the list"),
);

/// Ask for the list again every this many ticks while a job on it runs.
const LIST_POLL_TICKS: u64 = 3;

#[derive(Debug, Default)]
pub struct Jobs {
    pub list: Vec<JobView>,
    pub loaded: bool,
    /// Index into [`Jobs::visible`].
    pub selected: usize,
    pub filter: Filter,
    /// The log on show, instead of the list.
    pub log: Option<JobLog>,
}

impl Jobs {
    /// The jobs the filter lets through, newest first as the daemon sends them.
    pub fn visible(&self) -> Vec<&JobView> {
        self.list
            .iter()
            .filter(|j| {
                [
                    j.id.to_string().as_str(),
                    j.kind.as_str(),
                    &j.target,
                    j.state.as_str(),
                    j.step.as_deref().unwrap_or(""),
                ]
                .iter()
                .any(|field| self.filter.hit(field))
            })
            .collect()
    }

    pub fn selected_job(&self) -> Option<&JobView> {
        self.visible().get(self.selected).copied()
    }

    fn clamp(&mut self) {
        let n = self.visible().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    fn ask_list(shell: &mut Shell) {
        shell.send_once(Request::JobList);
    }

    fn ask_retry(&self, shell: &mut Shell) {
        let Some(job) = self.selected_job() else {
            shell.notice = Some("No job is selected.".into());
            return;
        };
        if job.state != JobState::Failed {
            shell.notice = Some(format!(
                "Job {} is {}: only a failed job can be retried.",
                job.id, job.state
            ));
            return;
        }
        let id = job.id;
        let step = job
            .step
            .clone()
            .unwrap_or_else(|| "the step that failed".into());
        let effect = format!(
            "Retry job {id} ({} {}): it is queued again and runs from {step}, the step that failed.",
            job.kind, job.target
        );
        shell.ask(format!("Retry job {id}?"), effect, Request::JobRetry { id });
    }
}

impl Screen for Jobs {
    fn tab(&self) -> Tab {
        Tab {
            name: "Jobs",
            short: "Jobs",
        }
    }

    fn keymap(&self) -> &'static Keymap {
        if self.log.is_some() {
            &JOB_LOG
        } else if self.filter.typing {
            &FILTER
        } else {
            &LIST
        }
    }

    fn keymaps(&self) -> Vec<&'static Keymap> {
        vec![&LIST, &FILTER, &JOB_LOG]
    }

    /// The tab key shows the list (closing a log).
    fn shown(&mut self, shell: &mut Shell) {
        self.log = None;
        Self::ask_list(shell);
    }

    fn refresh(&mut self, shell: &mut Shell) {
        match &self.log {
            Some(log) => log.poll(shell),
            None => Self::ask_list(shell),
        }
    }

    fn on_action(&mut self, action: Action, shell: &mut Shell) {
        if let Some(log) = self.log.as_mut() {
            log.scroll(action);
            return;
        }
        let len = self.visible().len();
        if self.filter.took_or_moved(action, &mut self.selected, len) {
            return;
        }
        match action {
            Action::Filter => self.filter.typing = true,
            Action::Retry => self.ask_retry(shell),
            Action::Open => {
                if let Some(job) = self.selected_job().cloned() {
                    self.log = Some(JobLog::open(job.id, Some(job), shell));
                }
            }
            _ => {}
        }
    }

    /// Back from a log to the list; Esc in the filter clears it.
    fn back(&mut self, _shell: &mut Shell) -> bool {
        if self.log.take().is_some() {
            return true;
        }
        if self.filter.closed() {
            self.clamp();
            return true;
        }
        false
    }

    fn tick(&mut self, shell: &mut Shell) {
        match &self.log {
            Some(log) if !log.finished() => log.poll(shell),
            Some(_) => {}
            None if shell.ticks % LIST_POLL_TICKS == 0
                && self.list.iter().any(|j| !j.state.is_done()) =>
            {
                Self::ask_list(shell)
            }
            None => {}
        }
    }

    fn on_reply(&mut self, purpose: Purpose, reply: &Reply, shell: &mut Shell) {
        match reply {
            Reply::JobList(list) => {
                self.list = list.clone();
                self.loaded = true;
                self.clamp();
            }
            Reply::JobShow(job) => {
                let id = purpose.tag;
                if let Some(known) = self.list.iter_mut().find(|j| j.id == id) {
                    *known = job.clone();
                }
                if let Some(log) = self.log.as_mut().filter(|l| l.id == id) {
                    log.job = Some(job.clone());
                }
            }
            Reply::JobLog(view) => {
                if let Some(log) = self.log.as_mut().filter(|l| l.id == purpose.tag) {
                    log.arrived(view);
                }
            }
            Reply::JobRetry(job) => {
                shell.notice = Some(format!(
                    "Job {} is {} again, from {}.",
                    job.id,
                    job.state,
                    job.step.as_deref().unwrap_or("the step that failed")
                ));
                Self::ask_list(shell);
            }
            _ => {}
        }
    }

    /// Opens the log of a job known only by its id (one the console just started); the list
    /// is asked again so that Back finds it there.
    fn show_item(&mut self, id: u64, shell: &mut Shell) {
        self.log = Some(JobLog::open(id, None, shell));
        shell.send_once_as(Purpose::new(Op::JobShow).tag(id), Request::JobShow { id });
        Self::ask_list(shell);
    }

    fn logged_out(&mut self) {
        self.log = None;
    }

    fn draw(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
        match &self.log {
            Some(log) => log.draw(shell, theme, frame, area),
            None => self.draw_list(shell, theme, frame, area),
        }
    }
}

impl Jobs {
    fn draw_list(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
        let visible = self.visible();
        let mut title = format!("Jobs ({}", visible.len());
        if !self.filter.text.is_empty() {
            title.push_str(&format!(
                " of {}, filter \"{}\"",
                self.list.len(),
                self.filter.text
            ));
        }
        title.push(')');
        let table_area = filtered_pane(title, &self.filter, theme, frame, area);

        if visible.is_empty() {
            let text = if !self.loaded {
                if shell.awaiting(Purpose::new(Op::JobList)) {
                    "Asking the daemon for the jobs …".to_string()
                } else {
                    "No job list yet: press r to ask the daemon.".to_string()
                }
            } else if self.list.is_empty() {
                "No jobs yet. A job appears when a group rotates or a key is synchronised."
                    .to_string()
            } else {
                format!("No job matches \"{}\".", self.filter.text)
            };
            note(&text, theme, frame, table_area);
            return;
        }

        let rows = visible.iter().map(|job| {
            Row::new(vec![
                Cell::from(job.id.to_string()),
                Cell::from(job.kind.as_str()),
                Cell::from(job.target.clone()),
                Cell::from(Span::styled(job.state.as_str(), theme.job_state(job.state))),
                Cell::from(Span::styled(gauge_text(job.progress, 8), theme.gauge())),
                Cell::from(job.step.clone().unwrap_or_else(|| "-".into())),
            ])
        });
        table(
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
            Some(self.selected),
            theme,
            frame,
            table_area,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::{dual, job, key, notice, ok, ok_as, p, sending, sent, typed};
    use crate::app::{App, Event};
    use crate::fixtures;
    use crate::keys::tests::{press, screen_keys_of_the_issue};
    use crossterm::event::KeyCode;

    fn jobs(app: &App) -> &Jobs {
        app.screen::<Jobs>().expect("the jobs screen")
    }

    #[test]
    fn a_running_job_log_is_polled_from_next_until_it_ends() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('3'));
        ok(&mut app, Reply::JobList(vec![job(4, JobState::Running)]));
        let effects = key(&mut app, KeyCode::Enter);
        assert_eq!(
            effects,
            [sending(
                p(Op::JobLog).tag(4),
                Request::JobLog {
                    id: 4,
                    from: Some(0)
                }
            )]
        );
        // The first read is still on its way: only the job itself (its progress) is asked for.
        assert_eq!(sent(&app.handle(Event::Tick)), [p(Op::JobShow).tag(4)]);
        ok_as(
            &mut app,
            p(Op::JobShow).tag(4),
            Reply::JobShow(job(4, JobState::Running)),
        );
        ok_as(
            &mut app,
            p(Op::JobLog).tag(4),
            Reply::JobLog(fixtures::job_log(4, JobState::Running, 0, &["a", "b"])),
        );
        let effects = app.handle(Event::Tick);
        assert_eq!(
            sent(&effects),
            [p(Op::JobLog).tag(4), p(Op::JobShow).tag(4)]
        );
        assert!(effects.contains(&sending(
            p(Op::JobLog).tag(4),
            Request::JobLog {
                id: 4,
                from: Some(2)
            }
        )));
        // An answer that overlaps what we have adds only the new lines.
        ok_as(
            &mut app,
            p(Op::JobLog).tag(4),
            Reply::JobLog(fixtures::job_log(4, JobState::Succeeded, 1, &["b", "c"])),
        );
        let log = jobs(&app).log.as_ref().expect("the log");
        assert_eq!(log.lines, ["a", "b", "c"]);
        assert!(log.finished());
        ok_as(
            &mut app,
            p(Op::JobShow).tag(4),
            Reply::JobShow(job(4, JobState::Succeeded)),
        );
        assert!(
            app.handle(Event::Tick).is_empty(),
            "a finished job is not polled"
        );
        key(&mut app, KeyCode::Esc);
        assert!(app.showing::<Jobs>());
        assert!(jobs(&app).log.is_none());
        assert_eq!(app.context(), &LIST);
    }

    #[test]
    fn the_jobs_filter_narrows_and_esc_clears_it() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('3'));
        ok(
            &mut app,
            Reply::JobList(vec![
                job(1, JobState::Failed),
                job(2, JobState::Succeeded),
                job(3, JobState::Running),
            ]),
        );
        key(&mut app, KeyCode::Char('/'));
        assert_eq!(app.context(), &FILTER);
        typed(&mut app, "FAIL");
        assert_eq!(jobs(&app).visible().len(), 1);
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.context(), &LIST);
        assert_eq!(jobs(&app).selected_job().map(|j| j.id), Some(1));
        key(&mut app, KeyCode::Char('/'));
        key(&mut app, KeyCode::Esc);
        assert_eq!(jobs(&app).visible().len(), 3);
    }

    #[test]
    fn a_failed_job_is_retried_after_confirming() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('3'));
        let mut failed = job(7, JobState::Failed);
        failed.step = Some("import_key_material".into());
        ok(
            &mut app,
            Reply::JobList(vec![job(8, JobState::Running), failed]),
        );
        key(&mut app, KeyCode::Char('y'));
        assert!(app.shell.confirm.is_none());
        assert!(notice(&app).contains("only a failed job"));
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Char('y'));
        assert_eq!(
            app.shell.confirm.as_ref().map(|c| c.effect.as_str()),
            Some(
                "Retry job 7 (rotate payments): it is queued again and runs from import_key_material, the step that failed."
            )
        );
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [sending(p(Op::JobRetry), Request::JobRetry { id: 7 })]
        );
        let mut queued = job(7, JobState::Queued);
        queued.step = Some("import_key_material".into());
        let effects = ok(&mut app, Reply::JobRetry(queued));
        assert_eq!(sent(&effects), [p(Op::JobList)]);
        assert_eq!(
            app.shell.notice.as_deref(),
            Some("Job 7 is queued again, from import_key_material.")
        );
    }

    #[test]
    fn the_list_is_polled_while_a_job_runs() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('3'));
        ok(&mut app, Reply::JobList(vec![job(1, JobState::Running)]));
        let polls: usize = (0..6).map(|_| sent(&app.handle(Event::Tick)).len()).sum();
        assert!(polls >= 1, "polled");
        crate::app::tests::all_answered(&mut app);
        ok(&mut app, Reply::JobList(vec![job(1, JobState::Succeeded)]));
        let polls: usize = (0..6).map(|_| sent(&app.handle(Event::Tick)).len()).sum();
        assert_eq!(polls, 0, "nothing runs: not polled");
    }

    #[test]
    fn the_jobs_keys() {
        let list = |code| LIST.action(press(code));
        assert_eq!(list(KeyCode::Char('q')), Some(Action::Back));
        assert_eq!(list(KeyCode::Char('j')), Some(Action::Down));
        assert_eq!(list(KeyCode::Char('k')), Some(Action::Up));
        assert_eq!(list(KeyCode::Char('/')), Some(Action::Filter));
        assert_eq!(list(KeyCode::Char('y')), Some(Action::Retry));
        assert_eq!(list(KeyCode::Char('x')), None);
        assert_eq!(list(KeyCode::Char('D')), None);
        assert_eq!(list(KeyCode::Char('d')), None);
        assert_eq!(list(KeyCode::Char('n')), None);
        assert_eq!(list(KeyCode::Char('v')), None);
        assert_eq!(list(KeyCode::Left), None);
        screen_keys_of_the_issue(&LIST);
        screen_keys_of_the_issue(&JOB_LOG);
        for c in ['q', 'j', 'k', 'x', '/', '?', '1', 'r'] {
            assert_eq!(
                FILTER.action(press(KeyCode::Char(c))),
                Some(Action::Input(c))
            );
        }
    }
}
