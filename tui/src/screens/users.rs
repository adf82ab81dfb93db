//! Users: the accounts with role, state and failed logins, and adding, locking, unlocking,
//! resetting and removing them. Each change goes through a confirm dialog that names its
//! effect; the daemon decides whether it needs a second administrator.

use keyward_proto::{Op, Reply, Request, Role, UserInfo};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row};

use super::{List, Screen, Tab};
use crate::app::{Purpose, Shell};
use crate::input::{Form, FormField, FormKind};
use crate::keys::{Action, Keymap, MOVE, b, ch, refresh};
use crate::theme::Theme;
use crate::ui::{note, pane, table};

/// The longest account name the form takes.
const NAME_MAX: usize = 64;

/// Adding a user.
const USER_ADD: FormKind = FormKind("user add");

pub const USERS: Keymap = Keymap::screen(
    "users",
    "Users",
    &[
        b(
            MOVE,
            "move",
            "Select an account (PgUp/PgDn, g/G: first/last)",
        ),
        b(
            &[&[ch('a', Action::Add)]],
            "add",
            "Add a user: name and role; the one-time password is shown once",
        ),
        b(
            &[&[ch('l', Action::Lock)]],
            "lock",
            "Lock the selected account (asks first)",
        ),
        b(
            &[&[ch('u', Action::Unlock)]],
            "unlock",
            "Unlock the selected account, clearing a failed-login lock",
        ),
        b(
            &[&[ch('R', Action::Reset)]],
            "reset",
            "New one-time password for the selected account, shown once",
        ),
        b(
            &[&[ch('D', Action::Remove)]],
            "remove",
            "Remove the selected account (asks first)",
        ),
        refresh("Ask for the accounts again"),
    ],
);

#[derive(Debug, Default)]
pub struct Users {
    pub accounts: List<UserInfo>,
}

impl Users {
    fn ask_change(&self, action: Action, shell: &mut Shell) {
        let Some(user) = self.accounts.selected() else {
            shell.notice = Some("No account is selected.".into());
            return;
        };
        let name = user.name.clone();
        let (title, effect, request) = match action {
            Action::Lock => (
                format!("Lock {name}?"),
                format!("Lock user {name}: {name} cannot log in until unlocked."),
                Request::UserLock { name },
            ),
            Action::Unlock => (
                format!("Unlock {name}?"),
                format!(
                    "Unlock user {name}: {name} can log in again; a failed-login lock is cleared."
                ),
                Request::UserUnlock { name },
            ),
            Action::Reset => (
                format!("Reset {name}'s password?"),
                format!(
                    "Reset user {name}: the current password stops working and a new one-time password is shown once; the account is unlocked."
                ),
                Request::UserReset { name },
            ),
            _ => (
                format!("Remove {name}?"),
                format!(
                    "Remove user {name}: the account is deleted and {name} can no longer log in."
                ),
                Request::UserRemove { name },
            ),
        };
        shell.ask(title, effect, request);
    }
}

impl Screen for Users {
    fn tab(&self) -> Tab {
        Tab {
            name: "Users",
            short: "Users",
        }
    }

    fn keymap(&self) -> &'static Keymap {
        &USERS
    }

    fn refresh(&mut self, shell: &mut Shell) {
        shell.send_once(Request::UserList);
    }

    fn on_action(&mut self, action: Action, shell: &mut Shell) {
        if self.accounts.moved(action) {
            return;
        }
        match action {
            Action::Add => shell.open_form(
                Form::new(
                    USER_ADD,
                    "Add a user",
                    "Enter on Role asks to confirm. The one-time password is shown once.",
                )
                .field(FormField::text("Name", NAME_MAX))
                .field(FormField::choice("Role", &["administrator", "auditor"])),
            ),
            Action::Lock | Action::Unlock | Action::Reset | Action::Remove => {
                self.ask_change(action, shell)
            }
            _ => {}
        }
    }

    fn submit(&mut self, form: &mut Form, shell: &mut Shell) {
        let name = form.value(0);
        let role = if form.value(1) == "auditor" {
            Role::Auditor
        } else {
            Role::Administrator
        };
        shell.ask(
            format!("Add {name}?"),
            format!(
                "Add user {name} as {}: a one-time password is shown once, and {name} must change it at first login.",
                role.as_str()
            ),
            Request::UserAdd { name, role },
        );
    }

    fn on_reply(&mut self, _purpose: Purpose, reply: &Reply, shell: &mut Shell) {
        match reply {
            Reply::UserList(list) => {
                self.accounts.arrived(list);
                return;
            }
            Reply::UserAdd(otp) | Reply::UserReset(otp) => shell.reveal_one_time_password(otp),
            Reply::UserLock(()) => shell.notice = Some("The account is locked.".into()),
            Reply::UserUnlock(()) => shell.notice = Some("The account is unlocked.".into()),
            Reply::UserRemove(()) => shell.notice = Some("The account is removed.".into()),
            _ => return,
        }
        shell.send_once(Request::UserList);
    }

    fn logged_out(&mut self) {
        *self = Self::default();
    }

    fn draw(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
        let accounts = &self.accounts;
        let block = pane(format!("Users ({})", accounts.items.len()), true, theme);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if accounts.items.is_empty() {
            let text = accounts.empty_text(
                shell,
                Op::UserList,
                [
                    "Asking the daemon for the accounts …",
                    "No accounts.",
                    "No list yet: press r to ask the daemon (it needs an administrator).",
                ],
            );
            note(text, theme, frame, inner);
            return;
        }
        let rows = accounts.items.iter().map(|u| {
            let state_style = if u.state == "active" {
                theme.good()
            } else {
                theme.bad()
            };
            let mut state = vec![Span::styled(u.state.clone(), state_style)];
            if u.must_change_password {
                state.push(Span::styled(" · one-time pw", theme.warn()));
            }
            Row::new(vec![
                Cell::from(u.name.clone()),
                Cell::from(u.role.as_str()),
                Cell::from(u.failed_logins.to_string()),
                Cell::from(ratatui::text::Line::from(state)),
            ])
        });
        table(
            ["Name", "Role", "Failed", "State"],
            [
                Constraint::Length(16),
                Constraint::Length(13),
                Constraint::Length(6),
                Constraint::Min(20),
            ],
            rows,
            Some(accounts.selected),
            theme,
            frame,
            inner,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Effect;
    use crate::app::dialogs::{FORM, REVEAL};
    use crate::app::tests::{dual, key, notice, ok, p, sending, sent, session, typed, up};
    use crate::fixtures;
    use crate::keys::tests::press;
    use crossterm::event::KeyCode;

    fn accounts() -> Reply {
        Reply::UserList(vec![
            fixtures::account("alice", Role::Administrator, "active", false, 0, "t"),
            fixtures::account("carol", Role::Auditor, "locked", true, 5, "t"),
        ])
    }

    #[test]
    fn lock_names_the_account_asks_first_and_refreshes_the_list() {
        let mut app = dual();
        assert_eq!(sent(&key(&mut app, KeyCode::Char('4'))), [p(Op::UserList)]);
        ok(&mut app, accounts());
        key(&mut app, KeyCode::Char('j'));
        assert!(key(&mut app, KeyCode::Char('l')).is_empty(), "asks first");
        let confirm = app.shell.confirm.clone().expect("a confirm");
        assert!(
            confirm
                .effect
                .starts_with("Lock user carol: carol cannot log in")
        );
        assert!(key(&mut app, KeyCode::Char('n')).is_empty());
        assert!(app.shell.confirm.is_none());
        key(&mut app, KeyCode::Char('l'));
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [sending(
                p(Op::UserLock),
                Request::UserLock {
                    name: "carol".into()
                }
            )]
        );
        let effects = ok(&mut app, Reply::UserLock(()));
        assert_eq!(sent(&effects), [p(Op::UserList)]);
        assert!(notice(&app).contains("locked"));
    }

    #[test]
    fn the_other_account_actions_send_their_requests() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('4'));
        ok(&mut app, accounts());
        for (c, request) in [
            (
                'u',
                Request::UserUnlock {
                    name: "alice".into(),
                },
            ),
            (
                'R',
                Request::UserReset {
                    name: "alice".into(),
                },
            ),
            (
                'D',
                Request::UserRemove {
                    name: "alice".into(),
                },
            ),
        ] {
            key(&mut app, KeyCode::Char(c));
            let effects = key(&mut app, KeyCode::Enter);
            match effects.as_slice() {
                [Effect::Send { request: sent, .. }] => assert_eq!(sent, &request),
                other => panic!("{c}: {other:?}"),
            }
        }
    }

    #[test]
    fn adding_a_user_is_a_form_then_a_confirm_then_the_password_once() {
        let mut app = up();
        ok(&mut app, Reply::Login(session(&["alice"])));
        key(&mut app, KeyCode::Esc); // leave the form: one administrator is enough to try
        key(&mut app, KeyCode::Char('4'));
        ok(&mut app, accounts());
        key(&mut app, KeyCode::Char('a'));
        assert_eq!(app.context(), &FORM);
        key(&mut app, KeyCode::Enter); // Enter moves on to Role …
        key(&mut app, KeyCode::Enter); // … and on the last field, back to what is missing
        assert_eq!(app.shell.notice.as_deref(), Some("Fill in Name first."));
        assert_eq!(app.shell.form.as_ref().map(|f| f.focus), Some(0));
        typed(&mut app, "carol");
        key(&mut app, KeyCode::Enter); // to Role
        key(&mut app, KeyCode::Right); // auditor
        assert!(key(&mut app, KeyCode::Enter).is_empty());
        assert!(app.shell.form.is_none());
        let confirm = app.shell.confirm.clone().expect("a confirm");
        assert!(confirm.effect.contains("Add user carol as auditor"));
        assert!(confirm.effect.contains("Only one administrator"));
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [sending(
                p(Op::UserAdd),
                Request::UserAdd {
                    name: "carol".into(),
                    role: Role::Auditor
                }
            )]
        );
        let effects = ok(
            &mut app,
            Reply::UserAdd(fixtures::one_time_password("carol", "kX7-pq2-Lm9")),
        );
        assert_eq!(sent(&effects), [p(Op::UserList)]);
        assert_eq!(app.context(), &REVEAL);
        assert_eq!(
            app.shell.reveal.as_ref().map(|r| r.secret.expose()),
            Some("kX7-pq2-Lm9")
        );
        assert!(
            key(&mut app, KeyCode::Char('j')).is_empty(),
            "only closing works"
        );
        key(&mut app, KeyCode::Enter);
        assert!(
            app.shell.reveal.is_none(),
            "closed, and the password dropped with it"
        );
        assert_eq!(app.context(), &USERS);
    }

    #[test]
    fn esc_cancels_a_form_and_sends_nothing() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('4'));
        key(&mut app, KeyCode::Char('a'));
        typed(&mut app, "dave");
        assert!(key(&mut app, KeyCode::Esc).is_empty());
        assert!(app.shell.form.is_none());
        assert!(app.shell.confirm.is_none());
        assert_eq!(app.context(), &USERS);
    }

    #[test]
    fn the_users_keys() {
        let users = |c| USERS.action(press(KeyCode::Char(c)));
        assert_eq!(users('a'), Some(Action::Add));
        assert_eq!(users('l'), Some(Action::Lock));
        assert_eq!(users('u'), Some(Action::Unlock));
        assert_eq!(users('R'), Some(Action::Reset));
        assert_eq!(users('D'), Some(Action::Remove));
        assert_eq!(users('r'), Some(Action::Refresh), "lower-case r refreshes");
        assert_eq!(users('d'), None, "removing needs the capital D");
        assert_eq!(users('i'), None);
        assert_eq!(users('e'), None);
        assert_eq!(users(' '), None);
    }
}
