//! `passwd` on the console: a logged-in user changes their own password, in a form of three
//! masked fields (current, new, new again; the last must match, checked as typed). A user who
//! logged in with a one-time password gets the form at once: the daemon refuses everything
//! else for them until it is changed.

use keyward_proto::{Op, Request, SessionInfo};

use super::{Session, pending};
use crate::app::dialogs::{Confirm, Confirmable};
use crate::app::{PASSWORD_MAX, Purpose, Shell};
use crate::input::{Form, FormField, FormKind};

/// The password form.
pub const PASSWD: FormKind = FormKind("passwd");

/// Opens the password form for `name`, a user logged in on this console.
pub(super) fn open(name: &str, shell: &mut Shell) {
    shell.open_form(
        Form::new(
            PASSWD,
            format!("Change the password of {name}"),
            "Current: the one used to log in (after a reset, the one-time one). Masked, and wiped once sent or cancelled.",
        )
        .target(name)
        .field(FormField::secret("Current password", PASSWORD_MAX))
        .field(FormField::secret("New password", PASSWORD_MAX))
        .field(FormField::secret("New again", PASSWORD_MAX).same_as(1)),
    );
}

/// The passwords move out of the form into the request the confirm dialog holds (the repeat
/// is wiped with the form); cancelling drops them, and `Password` zeroizes on drop. Gives the
/// user it is for.
pub(super) fn submit(form: &mut Form, shell: &mut Shell) -> String {
    let name = form.target.clone();
    let old = form.take_password(0);
    let new = form.take_password(1);
    let request = Request::Passwd {
        user: Some(name.clone()),
        old,
        new,
    };
    shell.confirm = Some(Confirm {
        title: format!("Change the password of {name}?"),
        effect: format!(
            "Change the password of {name}: the new one is needed at {name}'s next login; this session stays logged in. A wrong current password counts towards the lockout, like a failed login."
        ),
        then: Confirmable::Send {
            purpose: Purpose::new(Op::Passwd),
            request,
        },
    });
    name
}

/// A logged-in user who still has a one-time password, if any.
pub(super) fn one_time_user(shell: &Shell) -> Option<String> {
    shell
        .users()
        .iter()
        .find(|u| u.must_change_password)
        .map(|u| u.name.clone())
}

impl Session {
    /// The daemon refused the change (a wrong current password, a new one too short): if the
    /// user it was for still has a one-time password, their form opens again, the reason in
    /// the error bar.
    pub(super) fn passwd_refused(&mut self, shell: &mut Shell) {
        let Some(name) = self.passwd_for.take() else {
            return;
        };
        if shell
            .users()
            .iter()
            .any(|u| u.name == name && u.must_change_password)
        {
            open(&name, shell);
        }
    }

    pub(super) fn passwd_changed(&mut self, info: SessionInfo, shell: &mut Shell) {
        self.passwd_for = None;
        self.session_changed(Op::Passwd, info, shell);
        match one_time_user(shell) {
            Some(name) => {
                shell.notice = Some(format!(
                    "Password changed. {name} still has a one-time password: set it now."
                ));
                open(&name, shell);
            }
            None => {
                shell.notice =
                    Some("Password changed; the new one is needed at the next login.".into());
                shell.send_once(Request::Status);
                pending::ask(shell);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::{
        dual, key, ok, p, refused, sending, sent, session, shown_secret, typed, up,
    };
    use crate::fixtures;
    use crate::screens::session::{Pane, USERS};
    use crossterm::event::KeyCode;
    use keyward_proto::{ErrorCode, Password, Reply};

    fn one_time(name: &str) -> Reply {
        Reply::Login(fixtures::session(&[name], &[name]))
    }

    /// Opens the form for `name` with `p` on the logged-in users.
    fn open_for(app: &mut crate::app::App, name: &str) {
        app.shell.form = None;
        let at = app.shell.users().iter().position(|u| u.name == name);
        let session = app.screen_mut::<Session>().expect("session");
        session.pane = Pane::Users;
        session.selected = at.expect("logged in");
        key(app, KeyCode::Char('p'));
        assert_eq!(
            app.shell.form.as_ref().map(|f| f.target.as_str()),
            Some(name)
        );
    }

    #[test]
    fn a_one_time_password_opens_the_password_form_at_once() {
        let mut app = up();
        let effects = ok(&mut app, one_time("carol"));
        // Nothing else works for carol yet, so no status is asked for.
        assert!(!sent(&effects).contains(&p(Op::Status)), "{effects:?}");
        let form = app.shell.form.as_ref().expect("the password form");
        assert_eq!(form.kind, PASSWD);
        assert_eq!(form.target, "carol");
        assert!(form.fields.iter().all(|f| matches!(&f.kind,
            crate::input::FieldKind::Text(t) if t.is_masked())));
        assert!(
            app.shell
                .notice
                .as_deref()
                .is_some_and(|n| n.contains("one-time password")),
            "{:?}",
            app.shell.notice
        );
    }

    #[test]
    fn the_new_password_typed_twice_must_match_before_anything_is_sent() {
        let mut app = up();
        ok(&mut app, one_time("carol"));
        typed(&mut app, "one-time-1");
        key(&mut app, KeyCode::Enter);
        typed(&mut app, "a new long password");
        key(&mut app, KeyCode::Enter);
        typed(&mut app, "a new long passwort");
        let form = app.shell.form.as_ref().expect("form");
        assert_eq!(
            form.reason(2).as_deref(),
            Some("differs from New password"),
            "checked as typed"
        );
        assert!(key(&mut app, KeyCode::Enter).is_empty());
        assert!(app.shell.confirm.is_none());
        assert_eq!(
            app.shell.notice.as_deref(),
            Some("Not sent: New again differs from New password.")
        );
        // Corrected, Enter asks to confirm; the confirm sends the request, once.
        key(&mut app, KeyCode::Backspace);
        typed(&mut app, "d");
        assert_eq!(app.shell.form.as_ref().and_then(|f| f.reason(2)), None);
        assert!(key(&mut app, KeyCode::Enter).is_empty());
        assert!(
            app.shell.form.is_none(),
            "the form and its secrets are gone"
        );
        let confirm = app.shell.confirm.as_ref().expect("confirm");
        assert_eq!(confirm.title, "Change the password of carol?");
        let effects = key(&mut app, KeyCode::Char('y'));
        assert_eq!(
            effects,
            [sending(
                p(Op::Passwd),
                Request::Passwd {
                    user: Some("carol".into()),
                    old: Password::new("one-time-1"),
                    new: Password::new("a new long password"),
                }
            )]
        );
        // Refused (too short): the error is shown and the form is back, empty.
        refused(
            &mut app,
            p(Op::Passwd),
            ErrorCode::Invalid,
            "the password is too short: use at least 12 characters",
        );
        assert_eq!(
            app.shell.error.as_ref().map(|e| e.message.as_str()),
            Some("the password is too short: use at least 12 characters")
        );
        let form = app.shell.form.as_ref().expect("the form again");
        assert_eq!((form.kind, form.target.as_str()), (PASSWD, "carol"));
        assert_eq!(form.first_empty(), Some(0));
        // Changed: the screens open (status is asked for) and the session is current.
        let effects = ok(&mut app, Reply::Passwd(session(&["carol"])));
        assert_eq!(sent(&effects), [p(Op::Status), p(Op::Pending)]);
        assert!(!app.shell.users()[0].must_change_password);
        assert!(
            app.shell
                .notice
                .as_deref()
                .is_some_and(|n| n.starts_with("Password changed")),
            "{:?}",
            app.shell.notice
        );
    }

    #[test]
    fn a_refusal_reopens_the_form_only_for_the_user_it_was_for() {
        let mut app = up();
        let mut both = fixtures::session(&["alice", "bob"], &["bob"]);
        both.dual_control = false;
        ok(&mut app, Reply::Login(both));
        // alice changes her own password while bob still has a one-time one.
        open_for(&mut app, "alice");
        for text in ["wrong-old", "a new long password", "a new long password"] {
            typed(&mut app, text);
            key(&mut app, KeyCode::Enter);
        }
        key(&mut app, KeyCode::Char('y'));
        refused(&mut app, p(Op::Passwd), ErrorCode::Auth, "wrong password");
        assert!(app.shell.error.is_some());
        assert!(
            app.shell.form.is_none(),
            "not bob's form for alice's mistake"
        );
    }

    #[test]
    fn p_on_the_logged_in_users_changes_the_selected_users_password() {
        let mut app = dual();
        assert_eq!(app.context(), &USERS);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Char('p'));
        let form = app.shell.form.as_ref().expect("form");
        assert_eq!((form.kind, form.target.as_str()), (PASSWD, "bob"));
        // Esc drops the form, and what was typed with it.
        typed(&mut app, "secret");
        key(&mut app, KeyCode::Esc);
        assert!(app.shell.form.is_none());
        assert_eq!(app.screen::<Session>().map(|s| s.pane), Some(Pane::Users));
    }

    #[test]
    fn a_logout_drops_a_shown_secret_and_a_pending_confirm() {
        let mut app = dual();
        open_for(&mut app, "alice");
        for text in ["old-password", "a new long password", "a new long password"] {
            typed(&mut app, text);
            key(&mut app, KeyCode::Enter);
        }
        assert!(app.shell.confirm.is_some());
        app.shell.reveal = Some(shown_secret());
        // An idle logout found by whoami: nobody is logged in any more.
        ok(&mut app, Reply::Whoami(session(&[])));
        assert!(app.shell.reveal.is_none());
        assert!(
            app.shell.confirm.is_none(),
            "a confirm holding passwords is not kept"
        );
    }
}
