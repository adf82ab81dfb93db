//! Session: log in (two administrators one after the other satisfy dual control), who is
//! logged in on this console (log one out, change a password: `passwd.rs`), and the requests
//! waiting for a second administrator (`pending.rs`). The only screen that needs no login.

mod passwd;
mod pending;

use keyward_proto::{Op, Reply, Request, SessionInfo, SessionUser};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub use pending::Pending;

use super::{Screen, Tab, move_selection, status::Status};
use crate::app::{PASSWORD_MAX, Purpose, Shell, USER_MAX};
use crate::input::{Form, TextField};
use crate::keys::{Action, CLEAR, ENTER, ESC, Keymap, MOVE, TAB, b, ch, key, refresh};
use crate::theme::Theme;
use crate::ui::{pane, wrapped};

pub const LOGIN_FORM: Keymap = Keymap::typing(
    "login form",
    "Session: log in",
    &[
        b(ENTER, "log in", "Log in with this user and password"),
        b(
            &[
                &[key(crossterm::event::KeyCode::Tab, Action::NextPane)],
                &[
                    key(crossterm::event::KeyCode::Up, Action::Up),
                    key(crossterm::event::KeyCode::Down, Action::Down),
                ],
            ],
            "field",
            "Move between User, Password, Logged in and Pending approvals",
        ),
        b(CLEAR, "clear", "Clear the field"),
        b(
            ESC,
            "leave",
            "Leave the form: to Status when someone is logged in, else quit",
        ),
    ],
);

pub const USERS: Keymap = Keymap::screen(
    "session users",
    "Session: logged in",
    &[
        b(MOVE, "move", "Select a logged-in user"),
        b(
            &[&[ch('x', Action::Logout)]],
            "log out",
            "Log the selected user out of this console",
        ),
        b(
            &[&[ch('p', Action::Passwd)]],
            "password",
            "Change the selected user's password: current, new, new again (masked)",
        ),
        b(
            TAB,
            "pane",
            "To Pending approvals, then back to the login form",
        ),
    ],
);

pub const PENDING: Keymap = Keymap::screen(
    "session pending",
    "Session: pending approvals",
    &[
        b(MOVE, "move", "Select a pending request"),
        b(
            ENTER,
            "approve",
            "Approve it (asks first); it then runs once, in both names",
        ),
        refresh("Ask for the pending requests again"),
        b(TAB, "pane", "Back to the login form"),
    ],
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginField {
    User,
    Password,
}

/// The login form. The password lives only here until Enter, then only in the request.
pub struct LoginForm {
    pub user: TextField,
    password: TextField,
    pub field: LoginField,
}

impl Default for LoginForm {
    fn default() -> Self {
        Self {
            user: TextField::plain(USER_MAX),
            password: TextField::masked(PASSWORD_MAX),
            field: LoginField::User,
        }
    }
}

impl LoginForm {
    /// How many characters are typed (the screen shows that many `*`).
    pub fn password_chars(&self) -> usize {
        self.password.chars()
    }
    /// The password as the form shows it: one `*` a character.
    pub fn password_shown(&self) -> String {
        self.password.shown()
    }
    fn focused(&mut self) -> &mut TextField {
        match self.field {
            LoginField::User => &mut self.user,
            LoginField::Password => &mut self.password,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pane {
    #[default]
    Form,
    Users,
    /// Pending approvals.
    Pending,
}

#[derive(Default)]
pub struct Session {
    pub login: LoginForm,
    pub pane: Pane,
    /// The selected logged-in user.
    pub selected: usize,
    pub pending: Pending,
    /// Whose password the last `passwd` sent was for (a refusal reopens their form).
    passwd_for: Option<String>,
}

impl Screen for Session {
    fn tab(&self) -> Tab {
        Tab {
            name: "Session",
            short: "Sess",
        }
    }

    fn keymap(&self) -> &'static Keymap {
        match self.pane {
            Pane::Form => &LOGIN_FORM,
            Pane::Users => &USERS,
            Pane::Pending => &PENDING,
        }
    }

    fn keymaps(&self) -> Vec<&'static Keymap> {
        vec![&LOGIN_FORM, &USERS, &PENDING]
    }

    fn needs_login(&self) -> bool {
        false
    }

    fn shown(&mut self, shell: &mut Shell) {
        self.pane = Pane::Form;
        self.login.field = LoginField::User;
        pending::ask(shell);
    }

    fn refresh(&mut self, shell: &mut Shell) {
        if self.pane == Pane::Pending {
            pending::ask(shell);
        } else {
            shell.send_once(Request::Whoami);
        }
    }

    fn on_action(&mut self, action: Action, shell: &mut Shell) {
        let n_users = shell.users().len();
        match (self.pane, action) {
            (Pane::Form, Action::Input(c)) => self.login.focused().push(c),
            (Pane::Form, Action::Backspace) => self.login.focused().pop(),
            (Pane::Form, Action::ClearInput) => self.login.focused().clear(),
            (Pane::Form, Action::Up) => self.login.field = LoginField::User,
            (Pane::Form, Action::Down) => self.login.field = LoginField::Password,
            (Pane::Form, Action::NextPane) => match self.login.field {
                LoginField::User => self.login.field = LoginField::Password,
                LoginField::Password if n_users > 0 => self.pane = Pane::Users,
                LoginField::Password => self.login.field = LoginField::User,
            },
            (Pane::Form, Action::PrevPane) => match self.login.field {
                LoginField::Password => self.login.field = LoginField::User,
                LoginField::User if n_users > 0 => self.pane = Pane::Users,
                LoginField::User => self.login.field = LoginField::Password,
            },
            (Pane::Form, Action::Open) => self.submit_login(shell),
            (Pane::Users, Action::NextPane) => {
                self.pane = Pane::Pending;
                pending::ask(shell);
            }
            (Pane::Users, Action::PrevPane) | (Pane::Pending, Action::NextPane) => {
                self.pane = Pane::Form;
                self.login.field = LoginField::User;
            }
            (Pane::Pending, Action::PrevPane) => self.pane = Pane::Users,
            (Pane::Pending, _) => pending::on_action(&mut self.pending, action, shell),
            (Pane::Users, Action::Up | Action::Down) => {
                move_selection(&mut self.selected, n_users, action);
            }
            (Pane::Users, Action::Passwd) => {
                if let Some(user) = shell.users().get(self.selected) {
                    let name = user.name.clone();
                    passwd::open(&name, shell);
                }
            }
            (Pane::Users, Action::Logout) => {
                if let Some(user) = shell.users().get(self.selected) {
                    let user = Some(user.name.clone());
                    shell.send(Request::Logout { user });
                }
            }
            _ => {}
        }
    }

    /// Esc in the login form goes to Status once someone is logged in.
    fn back(&mut self, shell: &mut Shell) -> bool {
        if self.pane == Pane::Form && shell.logged_in() {
            shell.switch_to::<Status>();
            return true;
        }
        false
    }

    fn tick(&mut self, shell: &mut Shell) {
        pending::poll(shell);
    }

    fn on_reply(&mut self, purpose: Purpose, reply: &Reply, shell: &mut Shell) {
        match reply {
            Reply::Login(info) | Reply::Logout(info) | Reply::Whoami(info) => {
                self.session_changed(purpose.op, info.clone(), shell);
            }
            Reply::Passwd(info) => self.passwd_changed(info.clone(), shell),
            Reply::Pending(list) => self.pending.arrived(list),
            Reply::Approve(approved) => pending::approved(purpose.tag, approved, shell),
            _ => {}
        }
    }

    fn on_refused(
        &mut self,
        purpose: Purpose,
        _error: &keyward_proto::ApiError,
        shell: &mut Shell,
    ) -> bool {
        if purpose.op == Op::Passwd {
            self.passwd_refused(shell);
        }
        false
    }

    fn submit(&mut self, form: &mut Form, shell: &mut Shell) {
        self.passwd_for = Some(passwd::submit(form, shell));
    }

    fn logged_out(&mut self) {
        self.pane = Pane::Form;
    }

    fn draw(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
        let [top, pending_area] =
            Layout::vertical([Constraint::Length(11), Constraint::Min(4)]).areas(area);
        pending::draw(
            &self.pending,
            self.pane == Pane::Pending,
            shell,
            theme,
            frame,
            pending_area,
        );
        let [form_area, users_area] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
        self.draw_form(shell, theme, frame, form_area);
        self.draw_users(shell, theme, frame, users_area);
    }
}

impl Session {
    fn submit_login(&mut self, shell: &mut Shell) {
        if self.login.user.value().trim().is_empty() {
            self.login.field = LoginField::User;
            shell.notice = Some("Type the user name first.".into());
        } else if self.login.password_chars() == 0 {
            self.login.field = LoginField::Password;
            shell.notice = Some("Type the password, then Enter.".into());
        } else if shell.awaiting(Purpose::new(Op::Login)) {
            shell.notice = Some("A login is already on its way.".into());
        } else {
            shell.send(Request::Login {
                user: self.login.user.value().trim().to_string(),
                password: self.login.password.take_password(),
            });
        }
    }

    /// The daemon's answer to who is logged in (after a login, a logout, a `whoami`, a
    /// password change).
    fn session_changed(&mut self, op: Op, info: SessionInfo, shell: &mut Shell) {
        let before: Vec<String> = shell.users().iter().map(|u| u.name.clone()).collect();
        shell.set_session(info);
        self.selected = self.selected.min(shell.users().len().saturating_sub(1));
        if op != Op::Login {
            return;
        }
        let users = shell.users();
        let arrived: Vec<&SessionUser> =
            users.iter().filter(|u| !before.contains(&u.name)).collect();
        let one_time = arrived
            .iter()
            .find(|u| u.must_change_password)
            .map(|u| u.name.clone());
        let mut notice = match arrived.as_slice() {
            [u] if u.must_change_password => format!(
                "{} logged in with a one-time password: set a new one now; nothing else works for {} until then.",
                u.name, u.name
            ),
            [u] => format!("{} logged in.", u.name),
            _ => "Logged in.".to_string(),
        };
        if shell.dual_control() {
            notice.push_str(" Dual control is satisfied.");
        } else if users.len() == 1 {
            notice.push_str(" A second administrator may log in for dual control.");
        }
        shell.notice = Some(notice);
        self.login.user.clear();
        self.login.field = LoginField::User;
        // With dual control there is nobody left to log in: the keys go to the screens.
        // Without it, the form stays for the second administrator.
        if shell.dual_control() {
            self.pane = Pane::Users;
        }
        match one_time {
            Some(name) => passwd::open(&name, shell),
            None if passwd::one_time_user(shell).is_none() => shell.send_once(Request::Status),
            None => {}
        }
        pending::ask(shell);
    }

    fn draw_form(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
        let form_focused = !shell.covered() && self.pane == Pane::Form;
        let title = if shell.logged_in() {
            "Log in a second user"
        } else {
            "Log in"
        };
        let block = pane(title.into(), self.pane == Pane::Form, theme);
        let inner = block.inner(area);
        frame.render_widget(block, area);

        let width = usize::from(inner.width.saturating_sub(11)).max(4);
        let field_line = |label: &'static str, text: String, focused: bool| {
            let shown: String = text
                .chars()
                .rev()
                .take(width)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let pad = width.saturating_sub(shown.chars().count());
            let style = if focused {
                theme.selected()
            } else {
                theme.text()
            };
            Line::from(vec![
                Span::styled(format!("{label:<10} "), theme.label()),
                Span::styled(format!("{shown}{}", "_".repeat(pad)), style),
            ])
        };
        let on = |f: LoginField| self.pane == Pane::Form && self.login.field == f;
        let sending = shell.awaiting(Purpose::new(Op::Login));
        let lines = vec![
            Line::from(""),
            field_line("User", self.login.user.shown(), on(LoginField::User)),
            Line::from(""),
            field_line(
                "Password",
                self.login.password_shown(),
                on(LoginField::Password),
            ),
            Line::from(""),
            Line::from(Span::styled(
                if sending {
                    "Logging in …"
                } else {
                    "Enter logs in. Two administrators, one after the other, satisfy dual control."
                },
                theme.dim(),
            )),
        ];
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        if form_focused {
            let (row, typed) = match self.login.field {
                LoginField::User => (1, self.login.user.chars()),
                LoginField::Password => (3, self.login.password_chars()),
            };
            let column = 11 + typed.min(width);
            frame.set_cursor_position(Position::new(
                inner.x + u16::try_from(column).unwrap_or(0),
                inner.y + row,
            ));
        }
    }

    fn draw_users(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
        let block = pane(
            "Logged in on this console".into(),
            self.pane == Pane::Users,
            theme,
        );
        let mut lines = vec![Line::from("")];
        let users = shell.users();
        if users.is_empty() {
            lines.push(Line::from(Span::styled(
                "Nobody is logged in.",
                theme.dim(),
            )));
        }
        for (i, user) in users.iter().enumerate() {
            let selected = self.pane == Pane::Users && i == self.selected;
            let mut spans = vec![Span::styled(
                format!(
                    "{}{:<16} {:<13}",
                    if selected { "▶ " } else { "  " },
                    user.name,
                    user.role.as_str()
                ),
                if selected {
                    theme.selected()
                } else {
                    theme.text()
                },
            )];
            if user.must_change_password {
                spans.push(Span::styled(" must change password", theme.warn()));
            }
            lines.push(Line::from(spans));
        }
        lines.push(Line::from(""));
        let dual = shell.dual_control();
        lines.push(Line::from(vec![
            Span::styled("Dual control ", theme.label()),
            if dual {
                Span::styled("satisfied", theme.good())
            } else {
                Span::styled("not satisfied", theme.warn())
            },
        ]));
        lines.push(Line::from(Span::styled(
            if dual {
                "Sensitive operations run at once, in both names."
            } else {
                "Sensitive operations need a second administrator: log one in here, or have one approve the request."
            },
            theme.dim(),
        )));
        wrapped(lines, block, frame, area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;
    use crate::app::tests::{dual, key, ok, p, sending, sent, session, typed, up};
    use crate::keys::tests::{ctrl, press, screen_keys_of_the_issue};
    use crossterm::event::KeyCode;
    use keyward_proto::Password;

    fn screen(app: &App) -> &Session {
        app.screen::<Session>().expect("the session screen")
    }

    #[test]
    fn enter_sends_the_login_and_wipes_the_password_from_the_form() {
        let mut app = up();
        typed(&mut app, "alice");
        key(&mut app, KeyCode::Tab);
        typed(&mut app, "correct horse battery");
        assert_eq!(screen(&app).login.password_chars(), 21);
        let effects = key(&mut app, KeyCode::Enter);
        assert_eq!(
            effects,
            [sending(
                p(Op::Login),
                Request::Login {
                    user: "alice".into(),
                    password: Password::new("correct horse battery"),
                }
            )]
        );
        assert_eq!(screen(&app).login.password_chars(), 0);
        // A second Enter while the first is on its way sends nothing.
        typed(&mut app, "again");
        assert!(key(&mut app, KeyCode::Enter).is_empty());
    }

    #[test]
    fn the_password_buffer_never_grows_past_its_reservation() {
        let mut app = up();
        let session = app.screen_mut::<Session>().expect("session");
        session.login.field = LoginField::Password;
        let capacity = session.login.password.capacity();
        typed(&mut app, &"x".repeat(PASSWORD_MAX + 40));
        assert_eq!(screen(&app).login.password_chars(), PASSWORD_MAX);
        assert_eq!(screen(&app).login.password.capacity(), capacity);
    }

    #[test]
    fn enter_without_a_password_moves_to_the_field_instead() {
        let mut app = up();
        typed(&mut app, "alice");
        assert!(key(&mut app, KeyCode::Enter).is_empty());
        assert_eq!(screen(&app).login.field, LoginField::Password);
        assert!(app.shell.notice.is_some());
    }

    #[test]
    fn the_first_login_keeps_the_form_for_the_second_administrator() {
        let mut app = up();
        let effects = ok(&mut app, Reply::Login(session(&["alice"])));
        assert_eq!(sent(&effects), [p(Op::Status), p(Op::Pending)]);
        assert_eq!(app.context(), &LOGIN_FORM);
        let effects = ok(&mut app, Reply::Login(session(&["alice", "bob"])));
        assert!(effects.is_empty(), "status is already on its way");
        assert_eq!(app.context(), &USERS);
        assert!(app.shell.dual_control());
    }

    #[test]
    fn x_logs_the_selected_user_out() {
        let mut app = dual();
        key(&mut app, KeyCode::Down);
        let effects = key(&mut app, KeyCode::Char('x'));
        assert_eq!(
            effects,
            [sending(
                p(Op::Logout),
                Request::Logout {
                    user: Some("bob".into())
                }
            )]
        );
        ok(&mut app, Reply::Logout(session(&["alice"])));
        assert_eq!(app.shell.users().len(), 1);
        ok(&mut app, Reply::Logout(session(&[])));
        assert_eq!(app.context(), &LOGIN_FORM);
    }

    #[test]
    fn esc_in_the_form_goes_to_status_once_someone_is_logged_in() {
        let mut app = up();
        ok(&mut app, Reply::Login(session(&["alice"])));
        key(&mut app, KeyCode::Esc);
        assert!(app.showing::<Status>());
        assert!(app.shell.confirm.is_none());
        let mut nobody = up();
        key(&mut nobody, KeyCode::Esc);
        assert!(nobody.shell.confirm.is_some(), "asks to quit");
    }

    #[test]
    fn the_session_keys() {
        screen_keys_of_the_issue(&USERS);
        let users = |code| USERS.action(press(code));
        assert_eq!(users(KeyCode::Char('x')), Some(Action::Logout));
        assert_eq!(users(KeyCode::Char('p')), Some(Action::Passwd));
        assert_eq!(users(KeyCode::Char('/')), None, "nothing to filter");
        for c in ['q', 'j', 'k', 'x', '/', '?', '1', 'r'] {
            assert_eq!(
                LOGIN_FORM.action(press(KeyCode::Char(c))),
                Some(Action::Input(c))
            );
        }
        assert_eq!(LOGIN_FORM.action(ctrl('u')), Some(Action::ClearInput));
        assert_eq!(LOGIN_FORM.action(press(KeyCode::F(1))), Some(Action::Help));
        // `p` changes a password on the logged-in users pane; in the login form it is a letter.
        assert_eq!(
            LOGIN_FORM.action(press(KeyCode::Char('p'))),
            Some(Action::Input('p'))
        );
        let pending = |code| PENDING.action(press(code));
        assert_eq!(pending(KeyCode::Enter), Some(Action::Open));
        assert_eq!(pending(KeyCode::Char('r')), Some(Action::Refresh));
        assert_eq!(pending(KeyCode::Tab), Some(Action::NextPane));
        assert_eq!(
            pending(KeyCode::Char('x')),
            None,
            "x logs out only in Logged in"
        );
        assert!(
            LOGIN_FORM
                .all()
                .filter_map(|b| b.help_text(&[]))
                .any(|text| text.contains("Pending approvals"))
        );
    }
}
