//! Pending approvals (on the Session screen): requests another administrator made without dual
//! control, waiting for a second one. Enter asks to confirm, then sends `approve ID`; the
//! daemon refuses self-approval and expired ids.

use keyward_proto::{JobStarted, OneTimePassword, PendingApproval, Request, Role};

use super::{App, Confirm, Confirmable, Effect, Purpose};
use crate::keys::Action;

/// Ask for the pending list again every this many ticks while the panel is on screen.
const PENDING_POLL_TICKS: u64 = 10;

#[derive(Debug, Default)]
pub struct Pending {
    pub list: Vec<PendingApproval>,
    pub loaded: bool,
    pub selected: usize,
}

impl App {
    /// Someone here may see and approve pending requests (an administrator whose password is
    /// not a one-time one).
    pub fn can_approve(&self) -> bool {
        self.users()
            .iter()
            .any(|u| u.role == Role::Administrator && !u.must_change_password)
    }

    pub(super) fn ask_pending(&mut self, out: &mut Vec<Effect>) {
        if self.can_approve() {
            self.send_once(Purpose::Pending, Request::Pending, out);
        }
    }

    pub(super) fn poll_pending(&mut self, out: &mut Vec<Effect>) {
        if self.ticks % PENDING_POLL_TICKS == 0 {
            self.ask_pending(out);
        }
    }

    pub(super) fn pending_action(&mut self, action: Action) {
        let len = self.pending.list.len();
        if super::move_selection(&mut self.pending.selected, len, action) || action != Action::Open
        {
            return;
        }
        let Some(p) = self.pending.list.get(self.pending.selected) else {
            self.notice = Some("Nothing is waiting for approval.".into());
            return;
        };
        let id = p.id;
        self.confirm = Some(Confirm {
            title: format!("Approve request {id}?"),
            effect: format!(
                "Approve request {id} from {} ({}): {}. It runs once, now, and its audit record names you both.",
                p.requested_by, p.channel, p.operation
            ),
            then: Confirmable::Send {
                purpose: Purpose::Approve(id),
                request: Request::Approve { id },
            },
        });
    }

    pub(super) fn pending_reply(
        &mut self,
        purpose: Purpose,
        data: serde_json::Value,
        out: &mut Vec<Effect>,
    ) {
        match purpose {
            Purpose::Pending => {
                if let Some(list) = self.parse::<Vec<PendingApproval>>(purpose, data) {
                    self.pending.list = list;
                    self.pending.loaded = true;
                    self.pending.selected = self
                        .pending
                        .selected
                        .min(self.pending.list.len().saturating_sub(1));
                }
            }
            Purpose::Approve(id) => {
                // The answer is whatever the approved request returns.
                // Parsed by value: no copy of a one-time password is left in a `Value`.
                if data.get("one_time_password").is_some() {
                    if let Some(otp) = self.parse::<OneTimePassword>(purpose, data) {
                        self.notice = Some(format!("Approved request {id}."));
                        self.show_one_time_password(otp);
                    }
                } else if let Ok(JobStarted { job }) = serde_json::from_value(data) {
                    self.notice = Some(format!(
                        "Approved request {id}: job {job} is queued (3 Jobs shows it)."
                    ));
                } else {
                    self.notice = Some(format!("Approved request {id}; it ran."));
                }
                self.ask_pending(out);
            }
            _ => {}
        }
    }
}
