//! The [`Shell`]: what every screen shares and may touch beyond its own state: the link and
//! the session, the requests on their way, the dialogs drawn over the screens, and the error or
//! notice line. A screen sends through it and opens dialogs in it; it never reaches another
//! screen.

use keyward_proto::{OneTimePassword, Request, Role, SessionInfo, SessionUser};

use super::dialogs::{Confirm, Confirmable, Info, Menu, Reveal};
use super::{Effect, ErrorLine, Purpose};
use crate::client::Link;
use crate::input::Form;
use crate::screens::{Screen, ScreenId};

pub struct Shell {
    /// The console socket, for the banner.
    pub socket: String,
    pub link: Link,
    /// Why the connection last dropped, while it is not back.
    pub last_drop: Option<String>,
    pub session: Option<SessionInfo>,
    /// The help overlay is open.
    pub help: bool,
    /// A read-only dialog (an audit record, the verification result).
    pub info: Option<Info>,
    /// A context menu (the key database's actions).
    pub menu: Option<Menu>,
    /// A form dialog (adding a user or a credential).
    pub form: Option<Form>,
    /// A one-time password shown once.
    pub reveal: Option<Reveal>,
    pub confirm: Option<Confirm>,
    pub error: Option<ErrorLine>,
    pub notice: Option<String>,
    /// Ticks (about seconds) since the console started.
    pub ticks: u64,
    awaiting: Vec<Purpose>,
    pub(super) out: Vec<Effect>,
    /// The screen being asked now: a form or menu it opens is its to handle.
    pub(super) asking: Option<ScreenId>,
    pub(super) form_owner: Option<ScreenId>,
    pub(super) menu_owner: Option<ScreenId>,
    /// A screen asked to be replaced by this one.
    pub(super) switch_to: Option<ScreenId>,
    /// A session answer left nobody logged in.
    pub(super) everyone_left: bool,
}

impl Shell {
    pub(super) fn new(socket: String) -> Self {
        Self {
            socket,
            link: Link::Connecting,
            last_drop: None,
            session: None,
            help: false,
            info: None,
            menu: None,
            form: None,
            reveal: None,
            confirm: None,
            error: None,
            notice: None,
            ticks: 0,
            awaiting: Vec::new(),
            out: Vec::new(),
            asking: None,
            form_owner: None,
            menu_owner: None,
            switch_to: None,
            everyone_left: false,
        }
    }

    /// Who is logged in on this console's session.
    pub fn users(&self) -> &[SessionUser] {
        self.session.as_ref().map_or(&[], |s| s.users.as_slice())
    }

    pub fn logged_in(&self) -> bool {
        !self.users().is_empty()
    }

    pub fn dual_control(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.dual_control)
    }

    /// Someone here may see and approve pending requests (an administrator whose password is
    /// not a one-time one).
    pub fn can_approve(&self) -> bool {
        self.users()
            .iter()
            .any(|u| u.role == Role::Administrator && !u.must_change_password)
    }

    /// The daemon's answer to who is logged in; when nobody is left, what only a logged-in user
    /// may see is dropped once the answer is handled.
    pub fn set_session(&mut self, info: SessionInfo) {
        self.session = Some(info);
        if !self.logged_in() {
            self.everyone_left = true;
        }
    }

    /// Whether an answer for `purpose` is still awaited (the screens say "loading").
    pub fn awaiting(&self, purpose: Purpose) -> bool {
        self.awaiting.contains(&purpose)
    }

    pub(super) fn answered(&mut self, purpose: Purpose) {
        self.awaiting.retain(|p| *p != purpose);
    }

    /// Nothing is awaited any more (the connection dropped).
    pub(super) fn forget_awaited(&mut self) {
        self.awaiting.clear();
    }

    pub fn send(&mut self, request: Request) {
        self.send_as(Purpose::of(&request), request);
    }

    /// Sends `request` for `purpose` (a tagged one: which job, which page).
    pub fn send_as(&mut self, purpose: Purpose, request: Request) {
        if !self.awaiting(purpose) {
            self.awaiting.push(purpose);
        }
        self.out.push(Effect::Send { purpose, request });
    }

    /// Sends unless the same request is already on its way.
    pub fn send_once(&mut self, request: Request) {
        self.send_once_as(Purpose::of(&request), request);
    }

    pub fn send_once_as(&mut self, purpose: Purpose, request: Request) {
        if !self.awaiting(purpose) {
            self.send_as(purpose, request);
        }
    }

    /// Opens a confirm dialog that sends `request` when confirmed. Without dual control it
    /// says the daemon will hold the request for a second administrator.
    pub fn ask(&mut self, title: String, effect: String, request: Request) {
        let mut effect = effect;
        if !self.dual_control() {
            effect.push_str(
                " Only one administrator is logged in: if it needs two, the daemon holds it until another approves.",
            );
        }
        self.confirm = Some(Confirm {
            title,
            effect,
            then: Confirmable::Send {
                purpose: Purpose::of(&request),
                request,
            },
        });
    }

    /// Opens `form`; when it is filled in, the screen that opened it gets it.
    pub fn open_form(&mut self, form: Form) {
        self.form = Some(form);
        self.form_owner = self.asking;
    }

    /// Opens `menu`; the action picked goes to the screen that opened it.
    pub fn open_menu(&mut self, menu: Menu) {
        self.menu = Some(menu);
        self.menu_owner = self.asking;
    }

    /// Replaces the screen on show with `S`, without asking it for anything.
    pub fn switch_to<S: Screen>(&mut self) {
        self.switch_to = Some(ScreenId::of::<S>());
    }

    /// Shows a one-time password the daemon gave out, once. The reveal holds its own copy,
    /// wiped when it closes; the reply's is wiped as the reply is dropped.
    pub fn reveal_one_time_password(&mut self, otp: &OneTimePassword) {
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
            secret: otp.one_time_password.clone(),
        });
    }

    /// Whether anything is drawn over the screen (a form included).
    pub fn covered(&self) -> bool {
        self.confirm.is_some()
            || self.reveal.is_some()
            || self.info.is_some()
            || self.help
            || self.menu.is_some()
            || self.form.is_some()
    }
}
