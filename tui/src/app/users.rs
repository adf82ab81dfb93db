//! Users: the accounts, and adding, locking, unlocking, resetting and removing them. Each
//! change goes through a confirm dialog that names its effect; the daemon decides whether it
//! needs a second administrator.

use keyward_proto::{OneTimePassword, Request, Role, UserInfo};

use super::{App, Confirm, Confirmable, Effect, Purpose, Reveal};
use crate::input::{Form, FormField, FormKind};
use crate::keys::Action;

/// The longest account name the form takes.
const NAME_MAX: usize = 64;

#[derive(Debug, Default)]
pub struct Accounts {
    pub list: Vec<UserInfo>,
    pub loaded: bool,
    pub selected: usize,
}

impl Accounts {
    pub fn selected_user(&self) -> Option<&UserInfo> {
        self.list.get(self.selected)
    }
}

impl App {
    pub(super) fn users_action(&mut self, action: Action) {
        let len = self.accounts.list.len();
        if super::move_selection(&mut self.accounts.selected, len, action) {
            return;
        }
        match action {
            Action::Add => {
                self.form = Some(
                    Form::new(
                        FormKind::UserAdd,
                        "Add a user",
                        "Enter on Role asks to confirm. The one-time password is shown once.",
                    )
                    .field(FormField::text("Name", NAME_MAX))
                    .field(FormField::choice("Role", &["administrator", "auditor"])),
                );
            }
            Action::Lock | Action::Unlock | Action::Reset | Action::Remove => {
                let Some(user) = self.accounts.selected_user() else {
                    self.notice = Some("No account is selected.".into());
                    return;
                };
                let name = user.name.clone();
                let (title, effect, purpose, request) = match action {
                    Action::Lock => (
                        format!("Lock {name}?"),
                        format!("Lock user {name}: {name} cannot log in until unlocked."),
                        Purpose::UserLock,
                        Request::UserLock { name },
                    ),
                    Action::Unlock => (
                        format!("Unlock {name}?"),
                        format!(
                            "Unlock user {name}: {name} can log in again; a failed-login lock is cleared."
                        ),
                        Purpose::UserUnlock,
                        Request::UserUnlock { name },
                    ),
                    Action::Reset => (
                        format!("Reset {name}'s password?"),
                        format!(
                            "Reset user {name}: the current password stops working and a new one-time password is shown once; the account is unlocked."
                        ),
                        Purpose::UserReset,
                        Request::UserReset { name },
                    ),
                    _ => (
                        format!("Remove {name}?"),
                        format!(
                            "Remove user {name}: the account is deleted and {name} can no longer log in."
                        ),
                        Purpose::UserRemove,
                        Request::UserRemove { name },
                    ),
                };
                self.ask(title, effect, purpose, request);
            }
            _ => {}
        }
    }

    /// Opens a confirm dialog that sends `request` when confirmed. Without dual control it
    /// says the daemon will hold the request for a second administrator.
    pub(super) fn ask(
        &mut self,
        title: String,
        effect: String,
        purpose: Purpose,
        request: Request,
    ) {
        let mut effect = effect;
        if !self.session.as_ref().is_some_and(|s| s.dual_control) {
            effect.push_str(
                " Only one administrator is logged in: if it needs two, the daemon holds it until another approves.",
            );
        }
        self.confirm = Some(Confirm {
            title,
            effect,
            then: Confirmable::Send { purpose, request },
        });
    }

    pub(super) fn submit_user_add(&mut self, form: &Form) {
        let name = form.value(0);
        let role = if form.value(1) == "auditor" {
            Role::Auditor
        } else {
            Role::Administrator
        };
        self.ask(
            format!("Add {name}?"),
            format!(
                "Add user {name} as {}: a one-time password is shown once, and {name} must change it at first login.",
                role.as_str()
            ),
            Purpose::UserAdd,
            Request::UserAdd { name, role },
        );
    }

    pub(super) fn user_reply(
        &mut self,
        purpose: Purpose,
        data: serde_json::Value,
        out: &mut Vec<Effect>,
    ) {
        match purpose {
            Purpose::UserList => {
                if let Some(list) = self.parse::<Vec<UserInfo>>(purpose, data) {
                    self.accounts.list = list;
                    self.accounts.loaded = true;
                    self.accounts.selected = self
                        .accounts
                        .selected
                        .min(self.accounts.list.len().saturating_sub(1));
                }
                return;
            }
            Purpose::UserAdd | Purpose::UserReset => {
                if let Some(otp) = self.parse::<OneTimePassword>(purpose, data) {
                    self.show_one_time_password(otp);
                }
            }
            Purpose::UserLock => self.notice = Some("The account is locked.".into()),
            Purpose::UserUnlock => self.notice = Some("The account is unlocked.".into()),
            Purpose::UserRemove => self.notice = Some("The account is removed.".into()),
            _ => return,
        }
        self.send_once(Purpose::UserList, Request::UserList, out);
    }

    pub(super) fn show_one_time_password(&mut self, otp: OneTimePassword) {
        self.reveal = Some(Reveal {
            title: format!("One-time password for {}", otp.name),
            intro: format!(
                "Give it to {} by hand; it is shown only this once.",
                otp.name
            ),
            outro: format!(
                "{} must change it at first login. Enter closes this and wipes it.",
                otp.name
            ),
            secret: otp.one_time_password,
        });
    }
}
