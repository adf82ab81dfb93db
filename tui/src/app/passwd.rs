//! `passwd` on the console: a logged-in user changes their own password, in a form of three
//! masked fields (current, new, new again; the last must match, checked as typed). A user who
//! logged in with a one-time password gets the form at once: the daemon refuses everything
//! else for them until it is changed.

use keyward_proto::{Request, SessionInfo};

use super::{App, Confirm, Confirmable, Effect, PASSWORD_MAX, Purpose};
use crate::input::{Form, FormField, FormKind};

impl App {
    /// Opens the password form for `name`, a user logged in on this console.
    pub(super) fn open_passwd(&mut self, name: &str) {
        self.form = Some(
            Form::new(
                FormKind::Passwd,
                format!("Change the password of {name}"),
                "Current: the one used to log in (after a reset, the one-time one). Masked, and wiped once sent or cancelled.",
            )
            .target(name)
            .field(FormField::secret("Current password", PASSWORD_MAX))
            .field(FormField::secret("New password", PASSWORD_MAX))
            .field(FormField::secret("New again", PASSWORD_MAX).same_as(1)),
        );
    }

    /// The passwords move out of the form into the request the confirm dialog holds (the
    /// repeat is wiped with the form); cancelling drops them, and `Password` zeroizes on drop.
    pub(super) fn submit_passwd(&mut self, form: &mut Form) {
        let name = form.target.clone();
        self.passwd_for = Some(name.clone());
        let old = form.take_password(0);
        let new = form.take_password(1);
        self.confirm = Some(Confirm {
            title: format!("Change the password of {name}?"),
            effect: format!(
                "Change the password of {name}: the new one is needed at {name}'s next login; this session stays logged in. A wrong current password counts towards the lockout, like a failed login."
            ),
            then: Confirmable::Send {
                purpose: Purpose::Passwd,
                request: Request::Passwd {
                    user: Some(name),
                    old,
                    new,
                },
            },
        });
    }

    /// A logged-in user who still has a one-time password, if any.
    pub(super) fn one_time_user(&self) -> Option<String> {
        self.users()
            .iter()
            .find(|u| u.must_change_password)
            .map(|u| u.name.clone())
    }

    /// The daemon refused the change (a wrong current password, a new one too short): if the
    /// user it was for still has a one-time password, their form opens again, the reason in
    /// the error bar.
    pub(super) fn passwd_refused(&mut self) {
        let Some(name) = self.passwd_for.take() else {
            return;
        };
        if self
            .users()
            .iter()
            .any(|u| u.name == name && u.must_change_password)
        {
            self.open_passwd(&name);
        }
    }

    pub(super) fn passwd_reply(&mut self, data: serde_json::Value, out: &mut Vec<Effect>) {
        let Some(info) = self.parse::<SessionInfo>(Purpose::Passwd, data) else {
            return;
        };
        self.passwd_for = None;
        self.session_changed(Purpose::Passwd, info, out);
        match self.one_time_user() {
            Some(name) => {
                self.notice = Some(format!(
                    "Password changed. {name} still has a one-time password: set it now."
                ));
                self.open_passwd(&name);
            }
            None => {
                self.notice =
                    Some("Password changed; the new one is needed at the next login.".into());
                self.send_once(Purpose::Status, Request::Status, out);
                self.ask_pending(out);
            }
        }
    }
}
