//! The console's state and what each input does to it. Pure: no terminal, no socket, no clock.
//! Input arrives as an [`Event`]; what must happen outside (a request to send, quitting) comes
//! back as [`Effect`]s. The console decides nothing about the appliance: it sends requests and
//! shows the daemon's answers, errors included, with their codes.
//!
//! The [`App`] is a [`Shell`] (what the screens share: the session, the dialogs, the message
//! line) and the screens (`crate::screens`), each a component that owns its state, its keys
//! and its replies. The App routes: a key to the dialog or screen that has the keyboard, every
//! answer to every screen (each takes what it shows), a filled-in form or a picked menu item to
//! the screen that opened it.

use keyward_proto::{ApiError, ErrorCode, Op, Reply, Request};

use crate::client::Link;
use crate::keys::{Action, Keymap};
use crate::screens::{self, Screen, ScreenId, Tab};

pub mod dialogs;
mod shell;
pub use dialogs::{Confirm, Confirmable, Info, Menu, Reveal};
pub use shell::Shell;

/// The longest password the form takes, in bytes. The buffer is reserved once at this size so
/// typing never reallocates and leaves a copy behind; it is zeroized when sent or cleared.
pub const PASSWORD_MAX: usize = 256;
/// The longest user name the form takes.
pub const USER_MAX: usize = 64;
/// Stop polling after this many ticks (seconds) without a key press, so the daemon's idle
/// logout still applies to an unattended console.
pub const POLL_IDLE_LIMIT: u32 = 300;

/// What a request was for: its operation, and a tag the screen that asked reads the answer by
/// (which job, which approval, which page). Requests for the same purpose are sent once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purpose {
    pub op: Op,
    pub tag: u64,
}

impl Purpose {
    pub const fn new(op: Op) -> Self {
        Self { op, tag: 0 }
    }
    pub const fn tag(self, tag: u64) -> Self {
        Self { tag, ..self }
    }
    /// The purpose of a request with no tag.
    pub fn of(request: &Request) -> Self {
        Self::new(request.op())
    }
}

#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one event per key or answer, moved once: boxing a reply would only add an allocation"
)]
pub enum Event {
    Key(crossterm::event::KeyEvent),
    /// About once a second: drives polling of running jobs.
    Tick,
    Link(Link),
    /// The daemon's answer, typed by the operation of the request.
    Reply {
        purpose: Purpose,
        reply: Result<Reply, ApiError>,
    },
    Unsent {
        purpose: Purpose,
        reason: String,
    },
}

#[derive(Debug, PartialEq)]
pub enum Effect {
    Send { purpose: Purpose, request: Request },
    Quit,
}

/// An error as shown: the daemon's code when it gave one, and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLine {
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl ErrorLine {
    pub fn text(&self) -> String {
        match self.code {
            Some(code) => format!("{}: {}", code.as_str(), self.message),
            None => self.message.clone(),
        }
    }

    /// For a `dual-control` error: the id of the approval request the daemon created (its
    /// message names `approve ID`), so the screen can say where a second administrator
    /// approves it.
    pub fn approval_id(&self) -> Option<u64> {
        if self.code != Some(ErrorCode::DualControl) {
            return None;
        }
        let at = self.message.find("approve ")? + "approve ".len();
        let digits: String = self.message[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }
}

impl From<ApiError> for ErrorLine {
    fn from(e: ApiError) -> Self {
        Self {
            code: Some(e.code),
            message: e.message,
        }
    }
}

pub struct App {
    pub shell: Shell,
    /// In tab order.
    screens: Vec<Box<dyn Screen>>,
    /// The screen on show, an index into `screens`.
    current: usize,
    /// Where the console starts and returns when nobody is logged in: the screen that needs
    /// no login.
    home: usize,
    idle_ticks: u32,
}

impl App {
    pub fn new(socket: impl Into<String>) -> Self {
        let screens = screens::all();
        let home = screens.iter().position(|s| !s.needs_login()).unwrap_or(0);
        Self {
            shell: Shell::new(socket.into()),
            screens,
            current: home,
            home,
            idle_ticks: 0,
        }
    }

    /// The screen on show.
    pub fn current(&self) -> &dyn Screen {
        self.screens[self.current].as_ref()
    }

    /// Whether screen `S` is on show.
    pub fn showing<S: Screen>(&self) -> bool {
        self.id(self.current) == ScreenId::of::<S>()
    }

    /// Screen `S`, to look at its state (tests do).
    pub fn screen<S: Screen>(&self) -> Option<&S> {
        self.screens
            .iter()
            .find_map(|s| (s.as_ref() as &dyn std::any::Any).downcast_ref())
    }

    #[cfg(test)]
    pub(crate) fn screen_mut<S: Screen>(&mut self) -> Option<&mut S> {
        self.screens
            .iter_mut()
            .find_map(|s| (s.as_mut() as &mut dyn std::any::Any).downcast_mut())
    }

    /// The tabs, in order: each screen's names, whether it is on show, and whether it needs a
    /// login.
    pub fn tabs(&self) -> impl Iterator<Item = (Tab, bool, bool)> + '_ {
        self.screens
            .iter()
            .enumerate()
            .map(|(i, s)| (s.tab(), i == self.current, s.needs_login()))
    }

    /// The tabs' full names (the help's "Go to …").
    pub fn tab_names(&self) -> Vec<&'static str> {
        self.screens.iter().map(|s| s.tab().name).collect()
    }

    /// Where the keyboard is.
    pub fn context(&self) -> &'static Keymap {
        let shell = &self.shell;
        if shell.confirm.is_some() {
            &dialogs::CONFIRM
        } else if shell.reveal.is_some() {
            &dialogs::REVEAL
        } else if shell.info.is_some() {
            &dialogs::INFO
        } else if shell.help {
            &dialogs::HELP
        } else if shell.menu.is_some() {
            &dialogs::MENU
        } else {
            self.screen_context()
        }
    }

    /// Where the keyboard is on the screen itself, under any dialog (what `?` explains).
    pub fn screen_context(&self) -> &'static Keymap {
        if self.shell.form.is_some() {
            return &dialogs::FORM;
        }
        self.current().keymap()
    }

    fn id(&self, i: usize) -> ScreenId {
        ScreenId::of_screen(self.screens[i].as_ref())
    }

    fn index(&self, id: ScreenId) -> Option<usize> {
        (0..self.screens.len()).find(|&i| self.id(i) == id)
    }

    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => {
                self.idle_ticks = 0;
                if let Some(action) = self.context().action(key) {
                    // A key press acknowledges what was shown; the next result replaces it.
                    self.shell.error = None;
                    self.shell.notice = None;
                    self.act(action);
                }
            }
            Event::Tick => self.tick(),
            Event::Link(link) => self.link_changed(link),
            Event::Reply { purpose, reply } => {
                self.shell.answered(purpose);
                self.reply(purpose, reply);
            }
            Event::Unsent { purpose, reason } => {
                self.shell.answered(purpose);
                self.shell.error = Some(ErrorLine {
                    code: None,
                    message: format!("{} was not answered: {reason}", purpose.op.name()),
                });
            }
        }
        std::mem::take(&mut self.shell.out)
    }

    /// Lets screen `i` act on the shell, then carries out what it asked of the App.
    fn on_screen(&mut self, i: usize, f: impl FnOnce(&mut dyn Screen, &mut Shell)) {
        self.shell.asking = Some(self.id(i));
        f(self.screens[i].as_mut(), &mut self.shell);
        self.shell.asking = None;
        self.settle();
    }

    /// Every screen hears it (each takes what it shows).
    fn broadcast(&mut self, mut f: impl FnMut(&mut dyn Screen, &mut Shell)) {
        for i in 0..self.screens.len() {
            self.shell.asking = Some(self.id(i));
            f(self.screens[i].as_mut(), &mut self.shell);
        }
        self.shell.asking = None;
        self.settle();
    }

    fn settle(&mut self) {
        if std::mem::take(&mut self.shell.everyone_left) {
            self.logged_out();
        }
        if let Some(i) = self.shell.switch_to.take().and_then(|id| self.index(id)) {
            self.current = i;
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Quit => self.shell.out.push(Effect::Quit),
            Action::Help => self.shell.help = true,
            Action::Confirm => {
                if let Some(confirm) = self.shell.confirm.take() {
                    match confirm.then {
                        Confirmable::Quit => self.shell.out.push(Effect::Quit),
                        Confirmable::Send { purpose, request } => {
                            self.shell.send_as(purpose, request)
                        }
                        Confirmable::Show { screen, item } => {
                            if let Some(i) = self.index(screen) {
                                self.current = i;
                                self.on_screen(i, |s, shell| s.show_item(item, shell));
                            }
                        }
                    }
                }
            }
            Action::Cancel => self.shell.confirm = None,
            Action::Back => self.back(),
            Action::Goto(n) => self.goto(n),
            Action::Refresh => self.on_screen(self.current, |s, shell| s.refresh(shell)),
            _ if self.shell.info.is_some() => {
                if let Some(info) = self.shell.info.as_mut() {
                    info.scroll_by(action);
                }
            }
            _ if self.shell.menu.is_some() => self.menu_action(action),
            _ if self.shell.form.is_some() => self.form_action(action),
            _ => self.on_screen(self.current, |s, shell| s.on_action(action, shell)),
        }
    }

    fn back(&mut self) {
        let shell = &mut self.shell;
        if shell.help {
            shell.help = false;
            return;
        }
        if shell.reveal.take().is_some()
            || shell.info.take().is_some()
            || shell.menu.take().is_some()
        {
            return;
        }
        if shell.form.take().is_some() {
            shell.notice = Some("Cancelled; nothing was sent.".into());
            return;
        }
        let mut went_back = false;
        self.on_screen(self.current, |s, shell| went_back = s.back(shell));
        if !went_back {
            self.ask_quit();
        }
    }

    fn ask_quit(&mut self) {
        let names: Vec<&str> = self.shell.users().iter().map(|u| u.name.as_str()).collect();
        let effect = if names.is_empty() {
            "Nobody is logged in on this console.".to_string()
        } else {
            format!("This logs {} out of this console.", names.join(" and "))
        };
        self.shell.confirm = Some(Confirm {
            title: "Quit the console?".into(),
            effect,
            then: Confirmable::Quit,
        });
    }

    fn goto(&mut self, n: u8) {
        let Some(i) = usize::from(n)
            .checked_sub(1)
            .filter(|&i| i < self.screens.len())
        else {
            return;
        };
        if self.screens[i].needs_login() && !self.shell.logged_in() {
            self.shell.notice = Some("Log in first.".into());
            return;
        }
        self.shell.help = false;
        self.current = i;
        self.on_screen(i, |s, shell| s.shown(shell));
    }

    fn menu_action(&mut self, action: Action) {
        let Some(picked) = self.shell.menu.as_mut().and_then(|m| m.pick(action)) else {
            return;
        };
        self.shell.menu = None;
        if let Some(i) = self.shell.menu_owner.and_then(|id| self.index(id)) {
            self.on_screen(i, |s, shell| s.on_action(picked, shell));
        }
    }

    fn form_action(&mut self, action: Action) {
        let Some(form) = self.shell.form.as_mut() else {
            return;
        };
        match action {
            Action::Input(c) => form.input(c),
            Action::Backspace => form.backspace(),
            Action::ClearInput => form.clear(),
            Action::NextPane | Action::PrevPane if !form.tabs.is_empty() => {
                form.switch_tab(action == Action::NextPane)
            }
            Action::NextPane | Action::Down => form.next(),
            Action::PrevPane | Action::Up => form.prev(),
            Action::Left => form.cycle(false),
            Action::Right => form.cycle(true),
            Action::Open if !form.on_last() => form.advance(),
            Action::Open => {
                if let Some(empty) = form.first_empty() {
                    form.show(empty);
                    let label = form.fields.get(empty).map_or("", |f| f.label);
                    self.shell.notice = Some(format!("Fill in {label} first."));
                    return;
                }
                if let Some((bad, why)) = form.first_invalid() {
                    form.show(bad);
                    self.shell.notice = Some(format!("Not sent: {why}."));
                    return;
                }
                // The form (and any secret in it, moved into the request) is dropped after.
                if let Some(mut form) = self.shell.form.take() {
                    if let Some(i) = self.shell.form_owner.and_then(|id| self.index(id)) {
                        self.on_screen(i, |s, shell| s.submit(&mut form, shell));
                    }
                }
            }
            _ => {}
        }
    }

    fn tick(&mut self) {
        self.shell.ticks += 1;
        self.idle_ticks = self.idle_ticks.saturating_add(1);
        let shell = &mut self.shell;
        if self.idle_ticks == POLL_IDLE_LIMIT && (shell.reveal.is_some() || shell.confirm.is_some())
        {
            // An unattended console does not keep a one-time password on screen, nor a typed
            // secret waiting in a confirm dialog.
            shell.reveal = None;
            shell.confirm = None;
            shell.notice = Some("Closed the dialog: nobody pressed a key for a while.".into());
        }
        if shell.link != Link::Up || !shell.logged_in() || self.idle_ticks > POLL_IDLE_LIMIT {
            return;
        }
        self.on_screen(self.current, |s, shell| s.tick(shell));
    }

    fn link_changed(&mut self, link: Link) {
        if link != Link::Up && self.shell.session.is_some() {
            // The daemon ends a console session when its connection closes.
            let names: Vec<String> = self.shell.users().iter().map(|u| u.name.clone()).collect();
            self.shell.session = None;
            self.logged_out();
            self.shell.help = false;
            if !names.is_empty() {
                self.shell.notice = Some(format!(
                    "The connection dropped, which logged {} out. Log in again once it is back.",
                    names.join(" and ")
                ));
            }
        }
        match &link {
            Link::Up => self.shell.last_drop = None,
            Link::Down { reason, .. } => self.shell.last_drop = Some(reason.clone()),
            Link::Connecting => {}
        }
        if link != Link::Up {
            self.shell.forget_awaited();
        }
        self.shell.link = link;
    }

    fn reply(&mut self, purpose: Purpose, reply: Result<Reply, ApiError>) {
        match reply {
            Ok(reply) => self.broadcast(|s, shell| s.on_reply(purpose, &reply, shell)),
            Err(e) => {
                // An `auth` error may mean an idle logout: find out who is still here.
                if e.code == ErrorCode::Auth && !matches!(purpose.op, Op::Login | Op::Whoami) {
                    self.shell.send_once(Request::Whoami);
                }
                let mut shown = false;
                self.broadcast(|s, shell| shown |= s.on_refused(purpose, &e, shell));
                if !shown {
                    self.shell.error = Some(e.into());
                }
            }
        }
    }

    /// With nobody logged in, what only a logged-in user may see is dropped, so the next user
    /// does not see it before the daemon has said whether they may.
    fn logged_out(&mut self) {
        self.current = self.home;
        for screen in &mut self.screens {
            screen.logged_out();
        }
        let shell = &mut self.shell;
        shell.info = None;
        shell.menu = None;
        shell.form = None;
        // A one-time password on screen, or a confirm holding a typed secret, goes with them.
        shell.reveal = None;
        shell.confirm = None;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The App's own behaviour (keys to dialogs, the link, errors, polling), and the helpers
    //! every screen's tests use.
    use super::*;
    use crate::fixtures;
    use crate::screens::jobs::Jobs;
    use crate::screens::session::{LOGIN_FORM, Session, USERS};
    use crate::screens::status::Status;
    use crossterm::event::KeyCode;
    use keyward_proto::{JobKind, JobState, JobView, Password, Response, SessionInfo};
    use serde_json::json;

    pub(crate) use crate::fixtures::{ctrl, key, ok, ok_as, p, refused, sending, typed};

    /// Administrators logged in (dual control with two).
    pub(crate) fn session(names: &[&str]) -> SessionInfo {
        fixtures::session(names, &[])
    }
    pub(crate) fn up() -> App {
        let mut app = App::new("/tmp/console.sock");
        app.handle(Event::Link(Link::Up));
        app
    }
    pub(crate) fn dual() -> App {
        let mut app = up();
        ok(&mut app, Reply::Login(session(&["alice", "bob"])));
        app
    }
    /// The notice on show; a test fails where there is none.
    pub(crate) fn notice(app: &App) -> &str {
        app.shell.notice.as_deref().expect("a notice")
    }
    pub(crate) fn sent(effects: &[Effect]) -> Vec<Purpose> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { purpose, .. } => Some(*purpose),
                Effect::Quit => None,
            })
            .collect()
    }
    /// A rotation of payments, at wrap_key.
    pub(crate) fn job(id: u64, state: JobState) -> JobView {
        fixtures::job(id, JobKind::Rotate, "payments", state, 10, Some("wrap_key"))
    }
    pub(crate) fn shown_secret() -> Reveal {
        Reveal {
            title: "One-time password for carol".into(),
            intro: String::new(),
            secret: Password::new("kX7-pq2-Lm9"),
            outro: String::new(),
        }
    }
    /// Marks every request as answered (as if the daemon had).
    pub(crate) fn all_answered(app: &mut App) {
        app.shell.forget_awaited();
    }

    #[test]
    fn screens_need_a_login() {
        let mut app = up();
        assert_eq!(app.context(), &LOGIN_FORM);
        key(&mut app, KeyCode::Tab); // no one logged in: Tab stays in the form
        assert_eq!(app.context(), &LOGIN_FORM);
        if let Some(session) = app.screen_mut::<Session>() {
            session.pane = crate::screens::session::Pane::Users;
        }
        assert!(key(&mut app, KeyCode::Char('3')).is_empty());
        assert!(app.showing::<Session>());
        assert_eq!(app.shell.notice.as_deref(), Some("Log in first."));
    }

    #[test]
    fn an_unattended_console_closes_a_shown_one_time_password() {
        let mut app = dual();
        app.shell.reveal = Some(shown_secret());
        for _ in 1..POLL_IDLE_LIMIT {
            app.handle(Event::Tick);
        }
        assert!(app.shell.reveal.is_some(), "still shown before the limit");
        app.handle(Event::Tick);
        assert!(app.shell.reveal.is_none(), "closed at the limit");
    }

    #[test]
    fn polling_stops_when_nobody_touches_the_keyboard() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('3'));
        ok(&mut app, Reply::JobList(vec![job(4, JobState::Running)]));
        key(&mut app, KeyCode::Enter);
        ok_as(
            &mut app,
            p(Op::JobLog).tag(4),
            Reply::JobLog(fixtures::job_log::<&str>(4, JobState::Running, 0, &[])),
        );
        ok_as(
            &mut app,
            p(Op::JobShow).tag(4),
            Reply::JobShow(job(4, JobState::Running)),
        );
        let mut polls = 0;
        for _ in 0..POLL_IDLE_LIMIT + 50 {
            for effect in app.handle(Event::Tick) {
                if let Effect::Send { purpose, .. } = effect {
                    polls += 1;
                    app.shell.answered(purpose);
                }
            }
        }
        assert_eq!(polls, 2 * POLL_IDLE_LIMIT as usize);
        assert!(app.handle(Event::Tick).is_empty());
        key(&mut app, KeyCode::Char('j'));
        assert!(
            !app.handle(Event::Tick).is_empty(),
            "a key press resumes polling"
        );
    }

    #[test]
    fn losing_the_daemon_ends_the_session_on_screen() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('2'));
        app.handle(Event::Link(Link::Down {
            reason: "gone".into(),
            retry_in: std::time::Duration::from_secs(1),
        }));
        assert!(app.shell.session.is_none());
        assert!(app.showing::<Session>());
        assert!(notice(&app).contains("alice and bob"));
        assert!(app.handle(Event::Tick).is_empty());
        app.handle(Event::Link(Link::Up));
        assert!(app.shell.last_drop.is_none());
        // Requests lost with the connection are not awaited forever.
        assert!(!app.shell.awaiting(p(Op::Status)));
    }

    #[test]
    fn an_auth_error_asks_who_is_still_logged_in() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('2'));
        let effects = refused(
            &mut app,
            p(Op::Status),
            ErrorCode::Auth,
            "logged out after 10m idle",
        );
        assert_eq!(sent(&effects), [p(Op::Whoami)]);
        assert_eq!(
            app.shell.error.as_ref().map(ErrorLine::text).as_deref(),
            Some("auth: logged out after 10m idle")
        );
        ok(&mut app, Reply::Whoami(session(&[])));
        assert!(app.showing::<Session>());
    }

    #[test]
    fn an_unreadable_answer_is_an_error_not_a_crash() {
        let mut app = dual();
        // The wire itself: an answer that does not fit the request.
        app.handle(Event::Reply {
            purpose: p(Op::Status),
            reply: Response::ok(json!({"version": 3})).decode(Op::Status),
        });
        assert!(app.screen::<Status>().is_some_and(|s| s.report.is_none()));
        assert!(
            app.shell
                .error
                .as_ref()
                .is_some_and(|e| e.message.contains("status"))
        );
    }

    #[test]
    fn an_unsent_request_names_its_operation() {
        let mut app = dual();
        app.handle(Event::Unsent {
            purpose: p(Op::UserList),
            reason: "the daemon closed the connection".into(),
        });
        assert_eq!(
            app.shell.error.as_ref().map(ErrorLine::text).as_deref(),
            Some("user_list was not answered: the daemon closed the connection")
        );
    }

    #[test]
    fn quitting_asks_first_and_names_who_is_logged_out() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('2'));
        assert!(key(&mut app, KeyCode::Char('q')).is_empty());
        let confirm = app.shell.confirm.clone().expect("a confirm");
        assert!(confirm.effect.contains("alice and bob"));
        key(&mut app, KeyCode::Esc);
        assert!(app.shell.confirm.is_none());
        key(&mut app, KeyCode::Char('q'));
        assert_eq!(key(&mut app, KeyCode::Char('y')), [Effect::Quit]);
        assert_eq!(ctrl(&mut app, 'c'), [Effect::Quit]);
    }

    #[test]
    fn help_opens_over_the_screen_and_closes_with_q() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('?'));
        assert_eq!(app.context(), &dialogs::HELP);
        assert_eq!(app.screen_context(), &USERS);
        key(&mut app, KeyCode::Char('q'));
        assert_eq!(app.context(), &USERS);
        assert!(
            app.shell.confirm.is_none(),
            "q closed the help, it did not ask to quit"
        );
    }

    #[test]
    fn a_dual_control_error_names_the_approval_id() {
        let error: ErrorLine = ApiError::new(
            ErrorCode::DualControl,
            "this operation needs a second administrator: log in a second administrator or ask one to run 'approve 12'",
        )
        .into();
        assert_eq!(error.approval_id(), Some(12));
        let self_approval: ErrorLine = ApiError::new(
            ErrorCode::DualControl,
            "you cannot approve your own request",
        )
        .into();
        assert_eq!(self_approval.approval_id(), None);
        let other: ErrorLine = ApiError::new(ErrorCode::Invalid, "approve 3 what").into();
        assert_eq!(other.approval_id(), None);
    }

    #[test]
    fn when_everyone_leaves_the_lists_are_forgotten() {
        use crate::screens::audit::{Audit, NEWER};
        use crate::screens::credentials::Credentials;
        let mut app = dual();
        ok(&mut app, Reply::Status(fixtures::status(20)));
        key(&mut app, KeyCode::Char('6'));
        ok_as(
            &mut app,
            NEWER,
            Reply::AuditList(crate::screens::audit::tests::records(1, 20)),
        );
        assert_eq!(app.screen::<Audit>().map(|a| a.records.len()), Some(20));
        key(&mut app, KeyCode::Char('5'));
        ok(
            &mut app,
            Reply::CredentialList(crate::screens::credentials::tests::credentials()),
        );
        assert_eq!(
            app.screen::<Credentials>().map(|c| c.stored.items.len()),
            Some(2)
        );
        ok(&mut app, Reply::Logout(session(&[])));
        assert!(
            app.screen::<Credentials>()
                .is_some_and(|c| c.stored.items.is_empty() && !c.stored.loaded)
        );
        assert!(app.screen::<Audit>().is_some_and(|a| a.records.is_empty()));
    }

    #[test]
    fn the_screens_binding_counts_the_tabs_and_names_each() {
        let app = up();
        let names = app.tab_names();
        assert_eq!(crate::keys::TABS.keys_text(names.len()), "1-7");
        let help = crate::keys::TABS.help_text(&names).unwrap_or_default();
        for name in &names[1..] {
            assert!(help.contains(name), "{name}: {help}");
        }
    }

    #[test]
    fn the_tabs_are_the_screens_in_order() {
        let app = up();
        assert_eq!(
            app.tab_names(),
            [
                "Session",
                "Status",
                "Jobs",
                "Users",
                "Credentials",
                "Audit",
                "Keys"
            ]
        );
        assert!(app.showing::<Session>());
        assert!(app.screen::<Jobs>().is_some());
    }
}
