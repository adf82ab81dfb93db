//! Pending approvals (on the Session screen): requests another administrator made without dual
//! control, waiting for a second one. Enter asks to confirm, then sends `approve ID`; the
//! daemon refuses self-approval and expired ids.

use keyward_proto::{Approved, JobStarted, Op, PendingApproval, Request};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Cell, Row};

use crate::app::dialogs::{Confirm, Confirmable};
use crate::app::{Purpose, Shell};
use crate::keys::Action;
use crate::screens::List;
use crate::theme::Theme;
use crate::ui::{note, pane, table, time_of_day};

/// Ask for the pending list again every this many ticks while the panel is on screen.
const PENDING_POLL_TICKS: u64 = 10;

/// The requests waiting.
pub type Pending = List<PendingApproval>;

/// Asks for the pending requests, if someone here may see them.
pub(super) fn ask(shell: &mut Shell) {
    if shell.can_approve() {
        shell.send_once(Request::Pending);
    }
}

pub(super) fn poll(shell: &mut Shell) {
    if shell.ticks % PENDING_POLL_TICKS == 0 {
        ask(shell);
    }
}

/// The approved request's answer: whatever that request answers.
pub(super) fn approved(id: u64, approved: &Approved, shell: &mut Shell) {
    match approved {
        Approved::OneTimePassword(otp) => {
            shell.notice = Some(format!("Approved request {id}."));
            shell.reveal_one_time_password(otp);
        }
        Approved::JobStarted(JobStarted { job }) => {
            shell.notice = Some(format!(
                "Approved request {id}: job {job} is queued (3 Jobs shows it)."
            ));
        }
        _ => shell.notice = Some(format!("Approved request {id}; it ran.")),
    }
    ask(shell);
}

/// Enter on a request asks to approve it.
pub(super) fn on_action(pending: &mut Pending, action: Action, shell: &mut Shell) {
    if pending.moved(action) || action != Action::Open {
        return;
    }
    let Some(p) = pending.selected() else {
        shell.notice = Some("Nothing is waiting for approval.".into());
        return;
    };
    let id = p.id;
    shell.confirm = Some(Confirm {
        title: format!("Approve request {id}?"),
        effect: format!(
            "Approve request {id} from {} ({}): {}. It runs once, now, and its audit record names you both.",
            p.requested_by, p.channel, p.operation
        ),
        then: Confirmable::Send {
            purpose: Purpose::new(Op::Approve).tag(id),
            request: Request::Approve { id },
        },
    });
}

pub(super) fn draw(
    pending: &Pending,
    focused: bool,
    shell: &Shell,
    theme: Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let title = if pending.loaded {
        format!("Pending approvals ({})", pending.items.len())
    } else {
        "Pending approvals".to_string()
    };
    let block = pane(title, focused, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if pending.items.is_empty() {
        let text = if !shell.can_approve() {
            "Requests waiting for a second administrator show here while an administrator is logged in."
        } else {
            pending.empty_text(
                shell,
                Op::Pending,
                [
                    "Asking the daemon for pending requests …",
                    "Nothing waits for approval.",
                    "Tab here and press r to ask the daemon.",
                ],
            )
        };
        note(text, theme, frame, inner);
        return;
    }
    let rows = pending.items.iter().map(|p| {
        Row::new(vec![
            Cell::from(p.id.to_string()),
            Cell::from(format!("{} ({})", p.requested_by, p.channel)),
            Cell::from(p.operation.clone()),
            Cell::from(time_of_day(&p.expires).to_string()),
        ])
    });
    table(
        ["ID", "From", "Operation", "Expires"],
        [
            Constraint::Length(5),
            Constraint::Length(21),
            Constraint::Min(20),
            Constraint::Length(8),
        ],
        rows,
        focused.then_some(pending.selected),
        theme,
        frame,
        inner,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::{dual, key, notice, ok, ok_as, p, sending, sent, session, up};
    use crate::fixtures;
    use crate::screens::session::{PENDING, USERS};
    use crossterm::event::KeyCode;
    use keyward_proto::Reply;

    #[test]
    fn a_second_administrator_approves_a_pending_request_after_confirming() {
        let mut app = up();
        let effects = ok(&mut app, Reply::Login(session(&["bob"])));
        assert!(sent(&effects).contains(&p(Op::Pending)));
        ok(
            &mut app,
            Reply::Pending(vec![fixtures::pending(
                12,
                "serial:ttyS0",
                "user reset carol",
                "t",
                "t",
            )]),
        );
        // Form → Logged in → Pending approvals.
        key(&mut app, KeyCode::Tab);
        key(&mut app, KeyCode::Tab);
        assert_eq!(app.context(), &USERS);
        key(&mut app, KeyCode::Tab);
        assert_eq!(app.context(), &PENDING);
        assert!(key(&mut app, KeyCode::Enter).is_empty(), "asks first");
        let confirm = app.shell.confirm.clone().expect("a confirm");
        assert!(
            confirm
                .effect
                .contains("request 12 from alice (serial:ttyS0): user reset carol")
        );
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [sending(p(Op::Approve).tag(12), Request::Approve { id: 12 })]
        );
        // The approved request's answer: here a one-time password, shown once.
        let effects = ok_as(
            &mut app,
            p(Op::Approve).tag(12),
            Reply::Approve(Approved::OneTimePassword(fixtures::one_time_password(
                "carol", "abc-def",
            ))),
        );
        assert_eq!(app.context(), &crate::app::dialogs::REVEAL);
        assert_eq!(
            app.shell.reveal.as_ref().map(|r| r.secret.expose()),
            Some("abc-def")
        );
        assert!(
            effects.is_empty() && app.shell.awaiting(p(Op::Pending)),
            "the list is asked again"
        );
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.context(), &PENDING);
    }

    #[test]
    fn an_approved_rotation_names_its_job_and_auditors_are_not_asked() {
        let mut app = dual();
        ok_as(
            &mut app,
            p(Op::Approve).tag(5),
            Reply::Approve(Approved::JobStarted(JobStarted { job: 31 })),
        );
        assert!(notice(&app).contains("job 31"));
        let mut auditor = up();
        let mut erin = fixtures::session(&["erin"], &[]);
        erin.users[0].role = keyward_proto::Role::Auditor;
        let effects = ok(&mut auditor, Reply::Login(erin));
        assert!(!sent(&effects).contains(&p(Op::Pending)));
    }
}
