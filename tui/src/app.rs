//! The console's state and what each input does to it. Pure: no terminal, no socket, no clock.
//! Input arrives as an [`Event`]; what must happen outside (a request to send, quitting) comes
//! back as [`Effect`]s. The console decides nothing about the appliance: it sends requests and
//! shows the daemon's answers, errors included, with their codes.

use std::collections::BTreeSet;

use crate::client::Link;
use crate::input::{Form, FormKind, TextField};
use crate::keys::{self, Action, Context};

mod audit;
mod credentials;
mod editor;
mod keydb;
mod passwd;
mod pending;
mod users;
pub use audit::{AUDIT_PAGE, Audit};
pub use credentials::{Credentials, short_mask};
pub use keydb::{KeyDb, TreeRow};
use keyward_proto::{
    ApiError, ErrorCode, JobLogView, JobView, Password, Request, Response, SessionInfo,
    SettingView, StatusReport,
};
pub use pending::Pending;
use serde::de::DeserializeOwned;
pub use users::Accounts;

/// The longest password the form takes, in bytes. The buffer is reserved once at this size so
/// typing never reallocates and leaves a copy behind; it is zeroized when sent or cleared.
pub const PASSWORD_MAX: usize = 256;
/// The setting `d` on Status changes.
const DESIGNATED: &str = "rotation.designated";
/// The longest user name the form takes.
pub const USER_MAX: usize = 64;
/// Stop polling after this many ticks (seconds) without a key press, so the daemon's idle
/// logout still applies to an unattended console.
pub const POLL_IDLE_LIMIT: u32 = 300;

/// What a request was for: says how to read its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Purpose {
    Login,
    Logout,
    Whoami,
    Status,
    JobList,
    JobShow(u64),
    JobLog(u64),
    UserList,
    UserAdd,
    UserLock,
    UserUnlock,
    UserReset,
    UserRemove,
    Pending,
    Approve(u64),
    CredentialList,
    CredentialImport,
    CredentialAdd,
    CredentialRemove,
    /// `audit_list` for records after the last fetched (or the last page).
    AuditNewer,
    /// `audit_list` for the page before the first fetched.
    AuditOlder,
    AuditVerify,
    GroupList,
    KeyList,
    GroupTest,
    GroupRotate,
    GroupRemove,
    KeySync,
    JobRetry,
    ScheduleList,
    GroupCreate,
    GroupSet,
    Passwd,
    SettingsSet,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Logout => "logout",
            Self::Whoami => "whoami",
            Self::Status => "status",
            Self::JobList => "job_list",
            Self::JobShow(_) => "job_show",
            Self::JobLog(_) => "job_log",
            Self::UserList => "user_list",
            Self::UserAdd => "user_add",
            Self::UserLock => "user_lock",
            Self::UserUnlock => "user_unlock",
            Self::UserReset => "user_reset",
            Self::UserRemove => "user_remove",
            Self::Pending => "pending",
            Self::Approve(_) => "approve",
            Self::CredentialList => "credential_list",
            Self::CredentialImport => "credential_import",
            Self::CredentialAdd => "credential_add",
            Self::CredentialRemove => "credential_remove",
            Self::AuditNewer | Self::AuditOlder => "audit_list",
            Self::AuditVerify => "audit_verify",
            Self::GroupList => "group_list",
            Self::KeyList => "key_list",
            Self::GroupTest => "group_test",
            Self::GroupRotate => "group_rotate",
            Self::GroupRemove => "group_remove",
            Self::KeySync => "key_sync",
            Self::JobRetry => "job_retry",
            Self::ScheduleList => "schedule_list",
            Self::GroupCreate => "group_create",
            Self::GroupSet => "group_set",
            Self::Passwd => "passwd",
            Self::SettingsSet => "settings_set",
        }
    }
}

#[derive(Debug)]
pub enum Event {
    Key(crossterm::event::KeyEvent),
    /// About once a second: drives polling of running jobs.
    Tick,
    Link(Link),
    Reply {
        purpose: Purpose,
        response: Response,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Session,
    Status,
    Jobs,
    /// One job's log (opened from Jobs).
    JobLog,
    Users,
    Credentials,
    Audit,
    /// The key database: groups and their keys.
    Keys,
}

/// The tab bar, in order; `Goto(n)` picks the n-th. Each has its name and a short form the
/// tab strip uses when the full names do not fit.
pub const TABS: [(Screen, &str, &str); 7] = [
    (Screen::Session, "Session", "Sess"),
    (Screen::Status, "Status", "Stat"),
    (Screen::Jobs, "Jobs", "Jobs"),
    (Screen::Users, "Users", "Users"),
    (Screen::Credentials, "Credentials", "Creds"),
    (Screen::Audit, "Audit", "Audit"),
    (Screen::Keys, "Keys", "Keys"),
];

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

impl LoginForm {
    fn new() -> Self {
        Self {
            user: TextField::plain(USER_MAX),
            password: TextField::masked(PASSWORD_MAX),
            field: LoginField::User,
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPane {
    Form,
    Users,
    /// Pending approvals.
    Pending,
}

#[derive(Debug, Default)]
pub struct Jobs {
    pub list: Vec<JobView>,
    pub loaded: bool,
    /// Index into [`Jobs::visible`].
    pub selected: usize,
    pub filter: String,
    pub filtering: bool,
}

impl Jobs {
    /// The jobs the filter lets through, newest first as the daemon sends them.
    pub fn visible(&self) -> Vec<&JobView> {
        let needle = self.filter.to_lowercase();
        self.list
            .iter()
            .filter(|j| {
                needle.is_empty()
                    || [
                        j.id.to_string().as_str(),
                        j.kind.as_str(),
                        &j.target,
                        j.state.as_str(),
                        j.step.as_deref().unwrap_or(""),
                    ]
                    .iter()
                    .any(|field| field.to_lowercase().contains(&needle))
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
}

/// One job's log as far as it has been read.
#[derive(Debug)]
pub struct JobLog {
    pub id: u64,
    pub job: Option<JobView>,
    pub state: String,
    pub lines: Vec<String>,
    /// Ask for lines from here next.
    pub next: usize,
    /// The line the view ends at (the last shown, unless the lines after it are needed to
    /// fill the pane); `None` follows the end.
    pub scroll: Option<usize>,
}

impl JobLog {
    pub fn finished(&self) -> bool {
        is_finished(&self.state)
    }
}

/// Moves a list selection for a movement action (`len` rows); false for any other action.
pub(crate) fn move_selection(at: &mut usize, len: usize, action: Action) -> bool {
    let last = len.saturating_sub(1);
    match action {
        Action::Up => *at = at.saturating_sub(1),
        Action::Down => *at = (*at + 1).min(last),
        Action::PageUp => *at = at.saturating_sub(10),
        Action::PageDown => *at = (*at + 10).min(last),
        Action::Top => *at = 0,
        Action::Bottom => *at = last,
        _ => return false,
    }
    true
}

fn is_finished(state: &str) -> bool {
    matches!(state, "succeeded" | "failed")
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
}

impl From<ApiError> for ErrorLine {
    fn from(e: ApiError) -> Self {
        Self {
            code: Some(e.code),
            message: e.message,
        }
    }
}

impl ErrorLine {
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

/// What a confirm dialog would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmable {
    Quit,
    /// Send this request (a sensitive operation the dialog has named).
    Send {
        purpose: Purpose,
        request: Request,
    },
    /// Open this job's log (a job the console just started).
    OpenJob(u64),
}

/// A context menu: the actions available for the selected row, each with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    pub title: String,
    /// (key, what it does, the action it stands for).
    pub items: Vec<(char, String, Action)>,
    pub selected: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub title: String,
    /// The effect, in words.
    pub effect: String,
    pub then: Confirmable,
}

/// A dialog that shows something read-only (an audit record, a verification): label and
/// value lines; ↑↓ scroll, Enter or Esc closes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub title: String,
    /// (label, value); an empty label continues the line above or stands alone.
    pub lines: Vec<(String, String)>,
    pub scroll: u16,
    /// Draw it as an alarm (a broken audit chain).
    pub bad: bool,
}

/// A secret the daemon gave out to be shown once (a one-time password). Dropping it wipes it.
#[derive(Debug)]
pub struct Reveal {
    pub title: String,
    pub intro: String,
    pub secret: Password,
    pub outro: String,
}

pub struct App {
    /// The console socket, for the banner.
    pub socket: String,
    pub link: Link,
    pub session: Option<SessionInfo>,
    pub screen: Screen,
    pub login: LoginForm,
    pub session_pane: SessionPane,
    pub session_selected: usize,
    pub status: Option<StatusReport>,
    pub jobs: Jobs,
    pub job_log: Option<JobLog>,
    pub accounts: Accounts,
    pub pending: Pending,
    pub credentials: Credentials,
    pub audit: Audit,
    pub keydb: KeyDb,
    /// A read-only dialog (an audit record, the verification result).
    pub info: Option<Info>,
    /// A context menu (the key database's actions).
    pub menu: Option<Menu>,
    /// A form dialog (adding a user or a credential).
    pub form: Option<Form>,
    /// A one-time password shown once.
    pub reveal: Option<Reveal>,
    pub help: bool,
    pub confirm: Option<Confirm>,
    pub error: Option<ErrorLine>,
    pub notice: Option<String>,
    /// Why the connection last dropped, while it is not back.
    pub last_drop: Option<String>,
    awaiting: BTreeSet<Purpose>,
    ticks: u64,
    idle_ticks: u32,
    /// Whose password the last `passwd` sent was for (a refusal reopens their form).
    passwd_for: Option<String>,
}

impl App {
    pub fn new(socket: impl Into<String>) -> Self {
        Self {
            socket: socket.into(),
            link: Link::Connecting,
            session: None,
            screen: Screen::Session,
            login: LoginForm::new(),
            session_pane: SessionPane::Form,
            session_selected: 0,
            status: None,
            jobs: Jobs::default(),
            job_log: None,
            accounts: Accounts::default(),
            pending: Pending::default(),
            credentials: Credentials::default(),
            audit: Audit::default(),
            keydb: KeyDb::default(),
            info: None,
            menu: None,
            form: None,
            reveal: None,
            help: false,
            confirm: None,
            error: None,
            notice: None,
            last_drop: None,
            awaiting: BTreeSet::new(),
            ticks: 0,
            idle_ticks: 0,
            passwd_for: None,
        }
    }

    /// Who is logged in on this console's session.
    pub fn users(&self) -> &[keyward_proto::SessionUser] {
        self.session.as_ref().map_or(&[], |s| s.users.as_slice())
    }

    pub fn logged_in(&self) -> bool {
        !self.users().is_empty()
    }

    /// Whether an answer to `purpose` is still awaited (the screens say "loading").
    pub fn awaiting(&self, purpose: Purpose) -> bool {
        self.awaiting.contains(&purpose)
    }

    /// Where the keyboard is.
    pub fn context(&self) -> Context {
        if self.confirm.is_some() {
            Context::Confirm
        } else if self.reveal.is_some() {
            Context::Reveal
        } else if self.info.is_some() {
            Context::Info
        } else if self.help {
            Context::Help
        } else if self.menu.is_some() {
            Context::Menu
        } else {
            self.screen_context()
        }
    }

    /// Where the keyboard is on the screen itself, under any dialog (what `?` explains).
    pub fn screen_context(&self) -> Context {
        if self.form.is_some() {
            return Context::Form;
        }
        match self.screen {
            Screen::Session => match self.session_pane {
                SessionPane::Form => Context::LoginForm,
                SessionPane::Users => Context::SessionUsers,
                SessionPane::Pending => Context::SessionPending,
            },
            Screen::Status => Context::Status,
            Screen::Jobs if self.jobs.filtering => Context::JobsFilter,
            Screen::Jobs => Context::Jobs,
            Screen::JobLog => Context::JobLog,
            Screen::Users => Context::Users,
            Screen::Credentials => Context::Credentials,
            Screen::Audit if self.audit.filtering => Context::AuditFilter,
            Screen::Audit => Context::Audit,
            Screen::Keys if self.keydb.filtering => Context::KeysFilter,
            Screen::Keys => Context::Keys,
        }
    }

    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => {
                self.idle_ticks = 0;
                let Some(action) = keys::map(self.context(), key) else {
                    return Vec::new();
                };
                // A key press acknowledges what was shown; the next result replaces it.
                self.error = None;
                self.notice = None;
                self.act(action)
            }
            Event::Tick => self.tick(),
            Event::Link(link) => self.link_changed(link),
            Event::Reply { purpose, response } => {
                self.awaiting.remove(&purpose);
                self.reply(purpose, response)
            }
            Event::Unsent { purpose, reason } => {
                self.awaiting.remove(&purpose);
                self.error = Some(ErrorLine {
                    code: None,
                    message: format!("{} was not answered: {reason}", purpose.label()),
                });
                Vec::new()
            }
        }
    }

    fn send(&mut self, purpose: Purpose, request: Request) -> Effect {
        self.awaiting.insert(purpose);
        Effect::Send { purpose, request }
    }

    /// Sends unless the same request is already on its way.
    fn send_once(&mut self, purpose: Purpose, request: Request, out: &mut Vec<Effect>) {
        if !self.awaiting.contains(&purpose) {
            out.push(self.send(purpose, request));
        }
    }

    fn act(&mut self, action: Action) -> Vec<Effect> {
        let mut out = Vec::new();
        match action {
            Action::Quit => out.push(Effect::Quit),
            Action::Help => self.help = true,
            Action::Confirm => {
                if let Some(confirm) = self.confirm.take() {
                    match confirm.then {
                        Confirmable::Quit => out.push(Effect::Quit),
                        Confirmable::Send { purpose, request } => {
                            out.push(self.send(purpose, request))
                        }
                        Confirmable::OpenJob(id) => self.open_job_id(id, &mut out),
                    }
                }
            }
            Action::Cancel => self.confirm = None,
            Action::Back => self.back(),
            Action::Goto(n) => self.goto(n, &mut out),
            Action::Refresh => self.refresh(&mut out),
            _ if self.info.is_some() => self.info_action(action),
            _ if self.menu.is_some() => return self.menu_action(action),
            _ if self.form.is_some() => self.form_action(action),
            _ => match self.screen {
                Screen::Session => self.session_action(action, &mut out),
                Screen::Jobs => self.jobs_action(action, &mut out),
                Screen::JobLog => self.job_log_action(action),
                Screen::Users => self.users_action(action),
                Screen::Credentials => self.credentials_action(action),
                Screen::Audit => self.audit_action(action, &mut out),
                Screen::Keys => self.keys_action(action, &mut out),
                Screen::Status if action == Action::Designate => self.ask_designate(),
                Screen::Status => {}
            },
        }
        out
    }

    fn back(&mut self) {
        if self.help {
            self.help = false;
            return;
        }
        if self.reveal.take().is_some() || self.info.take().is_some() || self.menu.take().is_some()
        {
            return;
        }
        if self.form.take().is_some() {
            self.notice = Some("Cancelled; nothing was sent.".into());
            return;
        }
        match self.screen {
            Screen::JobLog => {
                self.job_log = None;
                self.screen = Screen::Jobs;
            }
            Screen::Audit if self.audit.filtering => {
                self.audit.filter.clear();
                self.audit.filtering = false;
            }
            Screen::Keys if self.keydb.filtering => {
                self.keydb.filter.clear();
                self.keydb.filtering = false;
                self.keydb.clamp();
            }
            Screen::Jobs if self.jobs.filtering => {
                self.jobs.filter.clear();
                self.jobs.filtering = false;
                self.jobs.clamp();
            }
            Screen::Session if self.session_pane == SessionPane::Form && self.logged_in() => {
                self.screen = Screen::Status;
            }
            _ => self.ask_quit(),
        }
    }

    /// `d` on Status: flips `rotation.designated`, asking first with what it means for the
    /// scheduled rotations.
    fn ask_designate(&mut self) {
        let Some(designated) = self.status.as_ref().map(|s| s.scheduler.designated) else {
            self.notice = Some("No status yet: press r first.".into());
            return;
        };
        let (value, effect) = if designated {
            (
                "false",
                "Set rotation.designated to false: this appliance stops rotating key groups on their schedule (forced rotations and jobs already running still run). Designate another appliance, or scheduled keys stop rotating.",
            )
        } else {
            (
                "true",
                "Set rotation.designated to true: this appliance rotates key groups when they fall due. In a fleet sharing key groups, only one appliance should.",
            )
        };
        self.ask(
            format!("Set {DESIGNATED} to {value}?"),
            effect.into(),
            Purpose::SettingsSet,
            Request::SettingsSet {
                name: DESIGNATED.into(),
                value: value.into(),
            },
        );
    }

    fn ask_quit(&mut self) {
        let names: Vec<&str> = self.users().iter().map(|u| u.name.as_str()).collect();
        let effect = if names.is_empty() {
            "Nobody is logged in on this console.".to_string()
        } else {
            format!("This logs {} out of this console.", names.join(" and "))
        };
        self.confirm = Some(Confirm {
            title: "Quit the console?".into(),
            effect,
            then: Confirmable::Quit,
        });
    }

    fn goto(&mut self, n: u8, out: &mut Vec<Effect>) {
        let Some(&(screen, _, _)) = TABS.get(usize::from(n).wrapping_sub(1)) else {
            return;
        };
        if screen != Screen::Session && !self.logged_in() {
            self.notice = Some("Log in first.".into());
            return;
        }
        self.help = false;
        self.job_log = None;
        self.screen = screen;
        match screen {
            Screen::Status => self.send_once(Purpose::Status, Request::Status, out),
            Screen::Jobs => self.send_once(Purpose::JobList, Request::JobList, out),
            Screen::Users => self.send_once(Purpose::UserList, Request::UserList, out),
            Screen::Credentials => {
                self.send_once(Purpose::CredentialList, Request::CredentialList, out)
            }
            Screen::Audit => self.audit_load(out),
            Screen::Keys => self.keys_load(out),
            Screen::Session => {
                self.session_pane = SessionPane::Form;
                self.login.field = LoginField::User;
                self.ask_pending(out);
            }
            Screen::JobLog => {}
        }
    }

    fn refresh(&mut self, out: &mut Vec<Effect>) {
        match self.screen {
            Screen::Session if self.session_pane == SessionPane::Pending => self.ask_pending(out),
            Screen::Session => self.send_once(Purpose::Whoami, Request::Whoami, out),
            Screen::Status => self.send_once(Purpose::Status, Request::Status, out),
            Screen::Jobs => self.send_once(Purpose::JobList, Request::JobList, out),
            Screen::JobLog => self.poll_log(out),
            Screen::Users => self.send_once(Purpose::UserList, Request::UserList, out),
            Screen::Credentials => {
                self.send_once(Purpose::CredentialList, Request::CredentialList, out)
            }
            Screen::Audit => self.audit_load(out),
            Screen::Keys => self.keys_load(out),
        }
    }

    fn session_action(&mut self, action: Action, out: &mut Vec<Effect>) {
        let n_users = self.users().len();
        match (self.session_pane, action) {
            (SessionPane::Form, Action::Input(c)) => self.login.focused().push(c),
            (SessionPane::Form, Action::Backspace) => self.login.focused().pop(),
            (SessionPane::Form, Action::ClearInput) => self.login.focused().clear(),
            (SessionPane::Form, Action::Up) => self.login.field = LoginField::User,
            (SessionPane::Form, Action::Down) => self.login.field = LoginField::Password,
            (SessionPane::Form, Action::NextPane) => match self.login.field {
                LoginField::User => self.login.field = LoginField::Password,
                LoginField::Password if n_users > 0 => self.session_pane = SessionPane::Users,
                LoginField::Password => self.login.field = LoginField::User,
            },
            (SessionPane::Form, Action::PrevPane) => match self.login.field {
                LoginField::Password => self.login.field = LoginField::User,
                LoginField::User if n_users > 0 => self.session_pane = SessionPane::Users,
                LoginField::User => self.login.field = LoginField::Password,
            },
            (SessionPane::Form, Action::Open) => self.submit_login(out),
            (SessionPane::Users, Action::NextPane) => {
                self.session_pane = SessionPane::Pending;
                self.ask_pending(out);
            }
            (SessionPane::Users, Action::PrevPane) | (SessionPane::Pending, Action::NextPane) => {
                self.session_pane = SessionPane::Form;
                self.login.field = LoginField::User;
            }
            (SessionPane::Pending, Action::PrevPane) => self.session_pane = SessionPane::Users,
            (SessionPane::Pending, _) => self.pending_action(action),
            (SessionPane::Users, Action::Up | Action::Down) => {
                move_selection(&mut self.session_selected, n_users, action);
            }
            (SessionPane::Users, Action::Passwd) => {
                if let Some(user) = self.users().get(self.session_selected) {
                    let name = user.name.clone();
                    self.open_passwd(&name);
                }
            }
            (SessionPane::Users, Action::Logout) => {
                if let Some(user) = self.users().get(self.session_selected) {
                    let user = Some(user.name.clone());
                    out.push(self.send(Purpose::Logout, Request::Logout { user }));
                }
            }
            _ => {}
        }
    }

    fn info_action(&mut self, action: Action) {
        let Some(info) = self.info.as_mut() else {
            return;
        };
        let last = u16::try_from(info.lines.len().saturating_sub(1)).unwrap_or(u16::MAX);
        info.scroll = match action {
            Action::Up => info.scroll.saturating_sub(1),
            Action::Down => info.scroll.saturating_add(1).min(last),
            Action::Top => 0,
            _ => info.scroll,
        };
    }

    fn form_action(&mut self, action: Action) {
        let Some(form) = self.form.as_mut() else {
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
                    self.notice = Some(format!("Fill in {label} first."));
                    return;
                }
                if let Some((bad, reason)) = form.first_invalid() {
                    form.show(bad);
                    let label = form.fields.get(bad).map_or("", |f| f.label);
                    self.notice = Some(format!("Not sent: {label} {reason}."));
                    return;
                }
                if let Some(mut form) = self.form.take() {
                    self.submit_form(&mut form);
                }
            }
            _ => {}
        }
    }

    /// Turns a filled-in form into a confirm dialog naming its effect; the form (and any
    /// secret in it, now moved into the request) is dropped.
    fn submit_form(&mut self, form: &mut Form) {
        match form.kind {
            FormKind::UserAdd => self.submit_user_add(form),
            FormKind::CredentialImport => self.submit_credential_import(form),
            FormKind::CredentialAdd => self.submit_credential_add(form),
            FormKind::KeySync => self.submit_key_sync(form),
            FormKind::Group => self.submit_group(form),
            FormKind::Passwd => self.submit_passwd(form),
        }
    }

    fn submit_login(&mut self, out: &mut Vec<Effect>) {
        if self.login.user.value().trim().is_empty() {
            self.login.field = LoginField::User;
            self.notice = Some("Type the user name first.".into());
        } else if self.login.password_chars() == 0 {
            self.login.field = LoginField::Password;
            self.notice = Some("Type the password, then Enter.".into());
        } else if self.awaiting.contains(&Purpose::Login) {
            self.notice = Some("A login is already on its way.".into());
        } else {
            let request = Request::Login {
                user: self.login.user.value().trim().to_string(),
                password: self.login.password.take_password(),
            };
            out.push(self.send(Purpose::Login, request));
        }
    }

    fn jobs_action(&mut self, action: Action, out: &mut Vec<Effect>) {
        let jobs = &mut self.jobs;
        if jobs.filtering {
            match action {
                Action::Input(c) => jobs.filter.push(c),
                Action::Backspace => {
                    jobs.filter.pop();
                }
                Action::ClearInput => jobs.filter.clear(),
                Action::Open => jobs.filtering = false,
                _ => {}
            }
            jobs.selected = 0;
            jobs.clamp();
            return;
        }
        let len = jobs.visible().len();
        if move_selection(&mut jobs.selected, len, action) {
            return;
        }
        match action {
            Action::Filter => jobs.filtering = true,
            Action::Retry => self.ask_retry(),
            Action::Open => {
                if let Some(job) = jobs.selected_job().cloned() {
                    self.open_job(job, out);
                }
            }
            _ => {}
        }
    }

    fn open_job(&mut self, job: JobView, out: &mut Vec<Effect>) {
        let id = job.id;
        self.job_log = Some(JobLog {
            id,
            state: job.state.to_string(),
            job: Some(job),
            lines: Vec::new(),
            next: 0,
            scroll: None,
        });
        self.screen = Screen::JobLog;
        out.push(self.send(Purpose::JobLog(id), Request::JobLog { id, from: Some(0) }));
    }

    /// Opens the log of a job known only by its id (one the console just started); the list
    /// is asked again so that Back finds it there.
    fn open_job_id(&mut self, id: u64, out: &mut Vec<Effect>) {
        self.job_log = Some(JobLog {
            id,
            state: "queued".into(),
            job: None,
            lines: Vec::new(),
            next: 0,
            scroll: None,
        });
        self.screen = Screen::JobLog;
        out.push(self.send(Purpose::JobLog(id), Request::JobLog { id, from: Some(0) }));
        self.send_once(Purpose::JobShow(id), Request::JobShow { id }, out);
        self.send_once(Purpose::JobList, Request::JobList, out);
    }

    fn ask_retry(&mut self) {
        let Some(job) = self.jobs.selected_job() else {
            self.notice = Some("No job is selected.".into());
            return;
        };
        if job.state != keyward_proto::JobState::Failed {
            self.notice = Some(format!(
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
        self.ask(
            format!("Retry job {id}?"),
            effect,
            Purpose::JobRetry,
            Request::JobRetry { id },
        );
    }

    fn job_log_action(&mut self, action: Action) {
        let Some(log) = self.job_log.as_mut() else {
            return;
        };
        let last = log.lines.len().saturating_sub(1);
        let at = log.scroll.unwrap_or(last);
        log.scroll = match action {
            Action::Up => Some(at.saturating_sub(1)),
            Action::Down => Some((at + 1).min(last)),
            Action::PageUp => Some(at.saturating_sub(10)),
            Action::PageDown => Some((at + 10).min(last)),
            Action::Top => Some(0),
            Action::Bottom => None,
            _ => log.scroll,
        };
        // Scrolling to the last line means following it again.
        if log.scroll == Some(last) {
            log.scroll = None;
        }
    }

    fn poll_log(&mut self, out: &mut Vec<Effect>) {
        let Some(log) = &self.job_log else { return };
        let (id, from, running) = (log.id, log.next, !log.finished());
        self.send_once(
            Purpose::JobLog(id),
            Request::JobLog {
                id,
                from: Some(from),
            },
            out,
        );
        if running {
            self.send_once(Purpose::JobShow(id), Request::JobShow { id }, out);
        }
    }

    fn tick(&mut self) -> Vec<Effect> {
        self.ticks += 1;
        self.idle_ticks = self.idle_ticks.saturating_add(1);
        let mut out = Vec::new();
        if self.idle_ticks == POLL_IDLE_LIMIT && (self.reveal.is_some() || self.confirm.is_some()) {
            // An unattended console does not keep a one-time password on screen, nor a typed
            // secret waiting in a confirm dialog.
            self.reveal = None;
            self.confirm = None;
            self.notice = Some("Closed the dialog: nobody pressed a key for a while.".into());
        }
        if self.link != Link::Up || !self.logged_in() || self.idle_ticks > POLL_IDLE_LIMIT {
            return out;
        }
        match self.screen {
            Screen::JobLog if self.job_log.as_ref().is_some_and(|l| !l.finished()) => {
                self.poll_log(&mut out)
            }
            Screen::Session => self.poll_pending(&mut out),
            Screen::Jobs
                if self.ticks % 3 == 0 && self.jobs.list.iter().any(|j| !j.state.is_done()) =>
            {
                self.send_once(Purpose::JobList, Request::JobList, &mut out)
            }
            _ => {}
        }
        out
    }

    fn link_changed(&mut self, link: Link) -> Vec<Effect> {
        if link != Link::Up && self.session.is_some() {
            // The daemon ends a console session when its connection closes.
            let names: Vec<String> = self.users().iter().map(|u| u.name.clone()).collect();
            self.session = None;
            self.logged_out();
            self.help = false;
            if !names.is_empty() {
                self.notice = Some(format!(
                    "The connection dropped, which logged {} out. Log in again once it is back.",
                    names.join(" and ")
                ));
            }
        }
        match &link {
            Link::Up => self.last_drop = None,
            Link::Down { reason, .. } => self.last_drop = Some(reason.clone()),
            Link::Connecting => {}
        }
        if link != Link::Up {
            self.awaiting.clear();
        }
        self.link = link;
        Vec::new()
    }

    fn reply(&mut self, purpose: Purpose, response: Response) -> Vec<Effect> {
        let mut out = Vec::new();
        let data = match response.into_result() {
            Ok(data) => data,
            Err(e) => {
                // An `auth` error may mean an idle logout: find out who is still here.
                if e.code == ErrorCode::Auth && !matches!(purpose, Purpose::Login | Purpose::Whoami)
                {
                    self.send_once(Purpose::Whoami, Request::Whoami, &mut out);
                }
                if purpose == Purpose::AuditVerify && self.audit_verify_failed(&e) {
                    return out;
                }
                self.error = Some(e.into());
                if purpose == Purpose::Passwd {
                    self.passwd_refused();
                }
                return out;
            }
        };
        match purpose {
            Purpose::Login | Purpose::Logout | Purpose::Whoami => {
                if let Some(info) = self.parse::<SessionInfo>(purpose, data) {
                    self.session_changed(purpose, info, &mut out);
                }
            }
            Purpose::Status => {
                self.status = self.parse(purpose, data).or(self.status.take());
                self.audit_status_arrived(&mut out);
            }
            Purpose::UserList
            | Purpose::UserAdd
            | Purpose::UserLock
            | Purpose::UserUnlock
            | Purpose::UserReset
            | Purpose::UserRemove => self.user_reply(purpose, data, &mut out),
            Purpose::Pending | Purpose::Approve(_) => self.pending_reply(purpose, data, &mut out),
            Purpose::CredentialList
            | Purpose::CredentialImport
            | Purpose::CredentialAdd
            | Purpose::CredentialRemove => self.credential_reply(purpose, data, &mut out),
            Purpose::AuditNewer | Purpose::AuditOlder | Purpose::AuditVerify => {
                self.audit_reply(purpose, data, &mut out)
            }
            Purpose::GroupList
            | Purpose::KeyList
            | Purpose::GroupTest
            | Purpose::GroupRotate
            | Purpose::GroupRemove
            | Purpose::KeySync
            | Purpose::ScheduleList => self.keys_reply(purpose, data, &mut out),
            Purpose::GroupCreate | Purpose::GroupSet => self.group_saved(purpose, data, &mut out),
            Purpose::Passwd => self.passwd_reply(data, &mut out),
            Purpose::SettingsSet => {
                if let Some(settings) = self.parse::<Vec<SettingView>>(purpose, data) {
                    self.notice = Some(match settings.iter().find(|s| s.name == DESIGNATED) {
                        Some(s) => format!("{DESIGNATED} is now {}.", s.value),
                        None => "Settings saved.".into(),
                    });
                }
                self.send_once(Purpose::Status, Request::Status, &mut out);
            }
            Purpose::JobRetry => {
                if let Some(job) = self.parse::<JobView>(purpose, data) {
                    self.notice = Some(format!(
                        "Job {} is {} again, from {}.",
                        job.id,
                        job.state,
                        job.step.as_deref().unwrap_or("the step that failed")
                    ));
                }
                self.send_once(Purpose::JobList, Request::JobList, &mut out);
            }
            Purpose::JobList => {
                if let Some(list) = self.parse(purpose, data) {
                    self.jobs.list = list;
                    self.jobs.loaded = true;
                    self.jobs.clamp();
                }
            }
            Purpose::JobShow(id) => {
                if let Some(job) = self.parse::<JobView>(purpose, data) {
                    if let Some(known) = self.jobs.list.iter_mut().find(|j| j.id == id) {
                        *known = job.clone();
                    }
                    if let Some(log) = self.job_log.as_mut().filter(|l| l.id == id) {
                        log.job = Some(job);
                    }
                }
            }
            Purpose::JobLog(id) => {
                if let Some(view) = self.parse::<JobLogView>(purpose, data) {
                    if let Some(log) = self.job_log.as_mut().filter(|l| l.id == id) {
                        // Lines we already have (a repeated poll) are not added twice.
                        if view.from <= log.next && view.next > log.next {
                            let skip = log.next - view.from;
                            log.lines.extend(view.lines.into_iter().skip(skip));
                            log.next = view.next;
                        }
                        log.state = view.state.to_string();
                    }
                }
            }
        }
        out
    }

    fn session_changed(&mut self, purpose: Purpose, info: SessionInfo, out: &mut Vec<Effect>) {
        let before: Vec<String> = self.users().iter().map(|u| u.name.clone()).collect();
        self.session = Some(info);
        self.session_selected = self
            .session_selected
            .min(self.users().len().saturating_sub(1));
        let users = self.users();
        if purpose == Purpose::Login {
            let arrived: Vec<&keyward_proto::SessionUser> =
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
            if self.session.as_ref().is_some_and(|s| s.dual_control) {
                notice.push_str(" Dual control is satisfied.");
            } else if users.len() == 1 {
                notice.push_str(" A second administrator may log in for dual control.");
            }
            self.notice = Some(notice);
            self.login.user.clear();
            self.login.field = LoginField::User;
            // With dual control there is nobody left to log in: the keys go to the screens.
            // Without it, the form stays for the second administrator.
            if self.session.as_ref().is_some_and(|s| s.dual_control) {
                self.session_pane = SessionPane::Users;
            }
            match one_time {
                Some(name) => self.open_passwd(&name),
                None if self.one_time_user().is_none() => {
                    self.send_once(Purpose::Status, Request::Status, out);
                }
                None => {}
            }
            self.ask_pending(out);
        }
        if !self.logged_in() {
            self.logged_out();
        }
    }

    /// With nobody logged in, what only a logged-in user may see is dropped, so the next user
    /// does not see it before the daemon has said whether they may.
    fn logged_out(&mut self) {
        self.screen = Screen::Session;
        self.session_pane = SessionPane::Form;
        self.job_log = None;
        self.accounts = Accounts::default();
        self.credentials = Credentials::default();
        self.audit = Audit::default();
        self.keydb = KeyDb::default();
        self.info = None;
        self.menu = None;
        self.form = None;
        // A one-time password on screen, or a confirm holding a typed secret, goes with them.
        self.reveal = None;
        self.confirm = None;
    }

    fn parse<T: DeserializeOwned>(
        &mut self,
        purpose: Purpose,
        data: serde_json::Value,
    ) -> Option<T> {
        match serde_json::from_value(data) {
            Ok(value) => Some(value),
            Err(e) => {
                self.error = Some(ErrorLine {
                    code: None,
                    message: format!(
                        "the daemon's answer to {} could not be read ({e}); is the console older than the daemon?",
                        purpose.label()
                    ),
                });
                None
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use keyward_proto::Password;
    use serde_json::json;

    pub(crate) fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
        app.handle(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }
    pub(crate) fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            assert!(key(app, KeyCode::Char(c)).is_empty());
        }
    }
    pub(crate) fn ok(app: &mut App, purpose: Purpose, data: serde_json::Value) -> Vec<Effect> {
        app.handle(Event::Reply {
            purpose,
            response: Response::ok(data),
        })
    }
    /// The daemon refuses `purpose` with `code` and `message`.
    pub(crate) fn refused(
        app: &mut App,
        purpose: Purpose,
        code: ErrorCode,
        message: &str,
    ) -> Vec<Effect> {
        app.handle(Event::Reply {
            purpose,
            response: Response::err(ApiError::new(code, message)),
        })
    }
    fn session(names: &[&str]) -> serde_json::Value {
        let users: Vec<_> = names
            .iter()
            .map(|n| json!({"name": n, "role": "administrator", "must_change_password": false}))
            .collect();
        json!({"channel": "console", "users": users, "dual_control": names.len() == 2})
    }
    pub(crate) fn up() -> App {
        let mut app = App::new("/tmp/console.sock");
        app.handle(Event::Link(Link::Up));
        app
    }
    pub(crate) fn dual() -> App {
        let mut app = up();
        ok(&mut app, Purpose::Login, session(&["alice", "bob"]));
        app
    }
    fn job(id: u64, state: &str) -> serde_json::Value {
        json!({"id": id, "kind": "rotate", "target": "payments", "state": state, "progress": 10,
               "step": "wrap_key", "steps": ["wrap_key"], "requested_by": ["alice"],
               "created": "t", "updated": "t", "finished": null, "error": null, "key": null,
               "aws_key_id": null})
    }
    fn sent(effects: &[Effect]) -> Vec<Purpose> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send { purpose, .. } => Some(*purpose),
                Effect::Quit => None,
            })
            .collect()
    }

    fn one_time(name: &str) -> serde_json::Value {
        json!({"channel": "console", "dual_control": false, "users": [
            {"name": name, "role": "administrator", "must_change_password": true}]})
    }

    #[test]
    fn a_one_time_password_opens_the_password_form_at_once() {
        let mut app = up();
        let effects = ok(&mut app, Purpose::Login, one_time("carol"));
        // Nothing else works for carol yet, so no status is asked for.
        assert!(!sent(&effects).contains(&Purpose::Status), "{effects:?}");
        let form = app.form.as_ref().expect("the password form");
        assert_eq!(form.kind, FormKind::Passwd);
        assert_eq!(form.target, "carol");
        assert!(form.fields.iter().all(|f| matches!(&f.kind,
            crate::input::FieldKind::Text(t) if t.is_masked())));
        assert!(
            app.notice
                .as_deref()
                .is_some_and(|n| n.contains("one-time password")),
            "{:?}",
            app.notice
        );
    }

    #[test]
    fn the_new_password_typed_twice_must_match_before_anything_is_sent() {
        let mut app = up();
        ok(&mut app, Purpose::Login, one_time("carol"));
        typed(&mut app, "one-time-1");
        key(&mut app, KeyCode::Enter);
        typed(&mut app, "a new long password");
        key(&mut app, KeyCode::Enter);
        typed(&mut app, "a new long passwort");
        let form = app.form.as_ref().expect("form");
        assert_eq!(
            form.reason(2).as_deref(),
            Some("differs from New password"),
            "checked as typed"
        );
        assert!(key(&mut app, KeyCode::Enter).is_empty());
        assert!(app.confirm.is_none());
        assert_eq!(
            app.notice.as_deref(),
            Some("Not sent: New again differs from New password.")
        );
        // Corrected, Enter asks to confirm; the confirm sends the request, once.
        key(&mut app, KeyCode::Backspace);
        typed(&mut app, "d");
        assert_eq!(app.form.as_ref().and_then(|f| f.reason(2)), None);
        assert!(key(&mut app, KeyCode::Enter).is_empty());
        assert!(app.form.is_none(), "the form and its secrets are gone");
        let confirm = app.confirm.as_ref().expect("confirm");
        assert_eq!(confirm.title, "Change the password of carol?");
        let effects = key(&mut app, KeyCode::Char('y'));
        assert_eq!(
            effects,
            [Effect::Send {
                purpose: Purpose::Passwd,
                request: Request::Passwd {
                    user: Some("carol".into()),
                    old: Password::new("one-time-1"),
                    new: Password::new("a new long password"),
                },
            }]
        );
        // Refused (too short): the error is shown and the form is back, empty.
        refused(
            &mut app,
            Purpose::Passwd,
            ErrorCode::Invalid,
            "the password is too short: use at least 12 characters",
        );
        assert_eq!(
            app.error.as_ref().map(|e| e.message.as_str()),
            Some("the password is too short: use at least 12 characters")
        );
        let form = app.form.as_ref().expect("the form again");
        assert_eq!(
            (form.kind, form.target.as_str()),
            (FormKind::Passwd, "carol")
        );
        assert_eq!(form.first_empty(), Some(0));
        // Changed: the screens open (status is asked for) and the session is current.
        let effects = ok(&mut app, Purpose::Passwd, session(&["carol"]));
        assert_eq!(sent(&effects), [Purpose::Status, Purpose::Pending]);
        assert!(!app.users()[0].must_change_password);
        assert!(
            app.notice
                .as_deref()
                .is_some_and(|n| n.starts_with("Password changed")),
            "{:?}",
            app.notice
        );
    }

    #[test]
    fn a_refusal_reopens_the_form_only_for_the_user_it_was_for() {
        let mut app = up();
        ok(
            &mut app,
            Purpose::Login,
            json!({"channel": "console", "dual_control": false, "users": [
                {"name": "alice", "role": "administrator", "must_change_password": false},
                {"name": "bob", "role": "administrator", "must_change_password": true}]}),
        );
        // alice changes her own password while bob still has a one-time one.
        app.open_passwd("alice");
        for text in ["wrong-old", "a new long password", "a new long password"] {
            typed(&mut app, text);
            key(&mut app, KeyCode::Enter);
        }
        key(&mut app, KeyCode::Char('y'));
        refused(&mut app, Purpose::Passwd, ErrorCode::Auth, "wrong password");
        assert!(app.error.is_some());
        assert!(app.form.is_none(), "not bob's form for alice's mistake");
    }

    #[test]
    fn p_on_the_logged_in_users_changes_the_selected_users_password() {
        let mut app = dual();
        assert_eq!(app.context(), Context::SessionUsers);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Char('p'));
        let form = app.form.as_ref().expect("form");
        assert_eq!((form.kind, form.target.as_str()), (FormKind::Passwd, "bob"));
        // Esc drops the form, and what was typed with it.
        typed(&mut app, "secret");
        key(&mut app, KeyCode::Esc);
        assert!(app.form.is_none());
    }

    #[test]
    fn enter_sends_the_login_and_wipes_the_password_from_the_form() {
        let mut app = up();
        typed(&mut app, "alice");
        key(&mut app, KeyCode::Tab);
        typed(&mut app, "correct horse battery");
        assert_eq!(app.login.password_chars(), 21);
        let effects = key(&mut app, KeyCode::Enter);
        assert_eq!(
            effects,
            [Effect::Send {
                purpose: Purpose::Login,
                request: Request::Login {
                    user: "alice".into(),
                    password: Password::new("correct horse battery"),
                },
            }]
        );
        assert_eq!(app.login.password_chars(), 0);
        // A second Enter while the first is on its way sends nothing.
        typed(&mut app, "again");
        assert!(key(&mut app, KeyCode::Enter).is_empty());
    }

    #[test]
    fn the_password_buffer_never_grows_past_its_reservation() {
        let mut app = up();
        app.login.field = LoginField::Password;
        let capacity = app.login.password.capacity();
        typed(&mut app, &"x".repeat(PASSWORD_MAX + 40));
        assert_eq!(app.login.password_chars(), PASSWORD_MAX);
        assert_eq!(app.login.password.capacity(), capacity);
    }

    #[test]
    fn enter_without_a_password_moves_to_the_field_instead() {
        let mut app = up();
        typed(&mut app, "alice");
        assert!(key(&mut app, KeyCode::Enter).is_empty());
        assert_eq!(app.login.field, LoginField::Password);
        assert!(app.notice.is_some());
    }

    #[test]
    fn the_first_login_keeps_the_form_for_the_second_administrator() {
        let mut app = up();
        let effects = ok(&mut app, Purpose::Login, session(&["alice"]));
        assert_eq!(sent(&effects), [Purpose::Status, Purpose::Pending]);
        assert_eq!(app.context(), Context::LoginForm);
        let effects = ok(&mut app, Purpose::Login, session(&["alice", "bob"]));
        assert!(effects.is_empty(), "status is already on its way");
        assert_eq!(app.context(), Context::SessionUsers);
        assert!(app.session.as_ref().is_some_and(|s| s.dual_control));
    }

    #[test]
    fn screens_need_a_login() {
        let mut app = up();
        assert_eq!(app.context(), Context::LoginForm);
        key(&mut app, KeyCode::Tab); // no one logged in: Tab stays in the form
        assert_eq!(app.context(), Context::LoginForm);
        app.session_pane = SessionPane::Users;
        assert!(key(&mut app, KeyCode::Char('3')).is_empty());
        assert_eq!(app.screen, Screen::Session);
        assert_eq!(app.notice.as_deref(), Some("Log in first."));
    }

    #[test]
    fn x_logs_the_selected_user_out() {
        let mut app = dual();
        key(&mut app, KeyCode::Down);
        let effects = key(&mut app, KeyCode::Char('x'));
        assert_eq!(
            effects,
            [Effect::Send {
                purpose: Purpose::Logout,
                request: Request::Logout {
                    user: Some("bob".into())
                },
            }]
        );
        ok(&mut app, Purpose::Logout, session(&["alice"]));
        assert_eq!(app.users().len(), 1);
        ok(&mut app, Purpose::Logout, session(&[]));
        assert_eq!(app.context(), Context::LoginForm);
    }

    #[test]
    fn a_running_job_log_is_polled_from_next_until_it_ends() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('3'));
        ok(&mut app, Purpose::JobList, json!([job(4, "running")]));
        let effects = key(&mut app, KeyCode::Enter);
        assert_eq!(
            effects,
            [Effect::Send {
                purpose: Purpose::JobLog(4),
                request: Request::JobLog {
                    id: 4,
                    from: Some(0)
                },
            }]
        );
        // The first read is still on its way: only the job itself (its progress) is asked for.
        assert_eq!(sent(&app.tick()), [Purpose::JobShow(4)]);
        ok(&mut app, Purpose::JobShow(4), job(4, "running"));
        ok(
            &mut app,
            Purpose::JobLog(4),
            json!({"id": 4, "state": "running", "from": 0, "next": 2, "lines": ["a", "b"]}),
        );
        let effects = app.tick();
        assert_eq!(sent(&effects), [Purpose::JobLog(4), Purpose::JobShow(4)]);
        assert!(effects.contains(&Effect::Send {
            purpose: Purpose::JobLog(4),
            request: Request::JobLog {
                id: 4,
                from: Some(2)
            },
        }));
        // An answer that overlaps what we have adds only the new lines.
        ok(
            &mut app,
            Purpose::JobLog(4),
            json!({"id": 4, "state": "succeeded", "from": 1, "next": 3, "lines": ["b", "c"]}),
        );
        let log = app.job_log.as_ref().unwrap();
        assert_eq!(log.lines, ["a", "b", "c"]);
        assert!(log.finished());
        ok(&mut app, Purpose::JobShow(4), job(4, "succeeded"));
        assert!(app.tick().is_empty(), "a finished job is not polled");
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.screen, Screen::Jobs);
        assert!(app.job_log.is_none());
    }

    fn shown_secret() -> Reveal {
        Reveal {
            title: "One-time password for carol".into(),
            intro: String::new(),
            secret: Password::new("kX7-pq2-Lm9"),
            outro: String::new(),
        }
    }

    #[test]
    fn an_unattended_console_closes_a_shown_one_time_password() {
        let mut app = dual();
        app.reveal = Some(shown_secret());
        for _ in 1..POLL_IDLE_LIMIT {
            app.handle(Event::Tick);
        }
        assert!(app.reveal.is_some(), "still shown before the limit");
        app.handle(Event::Tick);
        assert!(app.reveal.is_none(), "closed at the limit");
    }

    #[test]
    fn a_logout_drops_a_shown_secret_and_a_pending_confirm() {
        let mut app = dual();
        app.open_passwd("alice");
        for text in ["old-password", "a new long password", "a new long password"] {
            typed(&mut app, text);
            key(&mut app, KeyCode::Enter);
        }
        assert!(app.confirm.is_some());
        app.reveal = Some(shown_secret());
        // An idle logout found by whoami: nobody is logged in any more.
        ok(&mut app, Purpose::Whoami, session(&[]));
        assert!(app.reveal.is_none());
        assert!(
            app.confirm.is_none(),
            "a confirm holding passwords is not kept"
        );
    }

    #[test]
    fn polling_stops_when_nobody_touches_the_keyboard() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('3'));
        ok(&mut app, Purpose::JobList, json!([job(4, "running")]));
        key(&mut app, KeyCode::Enter);
        ok(
            &mut app,
            Purpose::JobLog(4),
            json!({"id": 4, "state": "running", "from": 0, "next": 0, "lines": []}),
        );
        ok(&mut app, Purpose::JobShow(4), job(4, "running"));
        let mut polls = 0;
        for _ in 0..POLL_IDLE_LIMIT + 50 {
            for effect in app.tick() {
                if let Effect::Send { purpose, .. } = effect {
                    polls += 1;
                    app.awaiting.remove(&purpose);
                }
            }
        }
        assert_eq!(polls, 2 * POLL_IDLE_LIMIT as usize);
        assert!(app.tick().is_empty());
        key(&mut app, KeyCode::Char('j'));
        assert!(!app.tick().is_empty(), "a key press resumes polling");
    }

    #[test]
    fn the_jobs_filter_narrows_and_esc_clears_it() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('3'));
        ok(
            &mut app,
            Purpose::JobList,
            json!([job(1, "failed"), job(2, "succeeded"), job(3, "running")]),
        );
        key(&mut app, KeyCode::Char('/'));
        assert_eq!(app.context(), Context::JobsFilter);
        typed(&mut app, "FAIL");
        assert_eq!(app.jobs.visible().len(), 1);
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.context(), Context::Jobs);
        assert_eq!(app.jobs.selected_job().map(|j| j.id), Some(1));
        key(&mut app, KeyCode::Char('/'));
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.jobs.visible().len(), 3);
    }

    #[test]
    fn losing_the_daemon_ends_the_session_on_screen() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('2'));
        app.handle(Event::Link(Link::Down {
            reason: "gone".into(),
            retry_in: std::time::Duration::from_secs(1),
        }));
        assert!(app.session.is_none());
        assert_eq!(app.screen, Screen::Session);
        assert!(app.notice.as_deref().unwrap().contains("alice and bob"));
        assert!(app.tick().is_empty());
        app.handle(Event::Link(Link::Up));
        assert!(app.last_drop.is_none());
        // Requests lost with the connection are not awaited forever.
        assert!(!app.awaiting(Purpose::Status));
    }

    #[test]
    fn an_auth_error_asks_who_is_still_logged_in() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('2'));
        let effects = refused(
            &mut app,
            Purpose::Status,
            ErrorCode::Auth,
            "logged out after 10m idle",
        );
        assert_eq!(sent(&effects), [Purpose::Whoami]);
        assert_eq!(
            app.error.as_ref().map(ErrorLine::text).as_deref(),
            Some("auth: logged out after 10m idle")
        );
        ok(&mut app, Purpose::Whoami, session(&[]));
        assert_eq!(app.screen, Screen::Session);
    }

    #[test]
    fn an_unreadable_answer_is_an_error_not_a_crash() {
        let mut app = dual();
        ok(&mut app, Purpose::Status, json!({"version": 3}));
        assert!(app.status.is_none());
        assert!(app.error.as_ref().unwrap().message.contains("status"));
    }

    #[test]
    fn quitting_asks_first_and_names_who_is_logged_out() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('2'));
        assert!(key(&mut app, KeyCode::Char('q')).is_empty());
        let confirm = app.confirm.clone().unwrap();
        assert!(confirm.effect.contains("alice and bob"));
        key(&mut app, KeyCode::Esc);
        assert!(app.confirm.is_none());
        key(&mut app, KeyCode::Char('q'));
        assert_eq!(key(&mut app, KeyCode::Char('y')), [Effect::Quit]);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.handle(Event::Key(ctrl_c)), [Effect::Quit]);
    }

    fn accounts() -> serde_json::Value {
        json!([
            {"name": "alice", "role": "administrator", "state": "active",
             "must_change_password": false, "failed_logins": 0, "created": "t"},
            {"name": "carol", "role": "auditor", "state": "locked",
             "must_change_password": true, "failed_logins": 5, "created": "t"},
        ])
    }

    #[test]
    fn lock_names_the_account_asks_first_and_refreshes_the_list() {
        let mut app = dual();
        assert_eq!(
            sent(&key(&mut app, KeyCode::Char('4'))),
            [Purpose::UserList]
        );
        ok(&mut app, Purpose::UserList, accounts());
        key(&mut app, KeyCode::Char('j'));
        assert!(key(&mut app, KeyCode::Char('l')).is_empty(), "asks first");
        let confirm = app.confirm.clone().unwrap();
        assert!(
            confirm
                .effect
                .starts_with("Lock user carol: carol cannot log in")
        );
        assert!(key(&mut app, KeyCode::Char('n')).is_empty());
        assert!(app.confirm.is_none());
        key(&mut app, KeyCode::Char('l'));
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [Effect::Send {
                purpose: Purpose::UserLock,
                request: Request::UserLock {
                    name: "carol".into()
                },
            }]
        );
        let effects = ok(&mut app, Purpose::UserLock, serde_json::Value::Null);
        assert_eq!(sent(&effects), [Purpose::UserList]);
        assert!(app.notice.as_deref().unwrap().contains("locked"));
    }

    #[test]
    fn the_other_account_actions_send_their_requests() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('4'));
        ok(&mut app, Purpose::UserList, accounts());
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
        ok(&mut app, Purpose::Login, session(&["alice"]));
        key(&mut app, KeyCode::Esc); // leave the form: one administrator is enough to try
        key(&mut app, KeyCode::Char('4'));
        ok(&mut app, Purpose::UserList, accounts());
        key(&mut app, KeyCode::Char('a'));
        assert_eq!(app.context(), Context::Form);
        key(&mut app, KeyCode::Enter); // Enter moves on to Role …
        key(&mut app, KeyCode::Enter); // … and on the last field, back to what is missing
        assert_eq!(app.notice.as_deref(), Some("Fill in Name first."));
        assert_eq!(app.form.as_ref().map(|f| f.focus), Some(0));
        typed(&mut app, "carol");
        key(&mut app, KeyCode::Enter); // to Role
        key(&mut app, KeyCode::Right); // auditor
        assert!(key(&mut app, KeyCode::Enter).is_empty());
        assert!(app.form.is_none());
        let confirm = app.confirm.clone().unwrap();
        assert!(confirm.effect.contains("Add user carol as auditor"));
        assert!(confirm.effect.contains("Only one administrator"));
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [Effect::Send {
                purpose: Purpose::UserAdd,
                request: Request::UserAdd {
                    name: "carol".into(),
                    role: keyward_proto::Role::Auditor
                },
            }]
        );
        let effects = ok(
            &mut app,
            Purpose::UserAdd,
            json!({"name": "carol", "one_time_password": "kX7-pq2-Lm9"}),
        );
        assert_eq!(sent(&effects), [Purpose::UserList]);
        assert_eq!(app.context(), Context::Reveal);
        assert_eq!(
            app.reveal.as_ref().map(|r| r.secret.expose()),
            Some("kX7-pq2-Lm9")
        );
        assert!(
            key(&mut app, KeyCode::Char('j')).is_empty(),
            "only closing works"
        );
        key(&mut app, KeyCode::Enter);
        assert!(
            app.reveal.is_none(),
            "closed, and the password dropped with it"
        );
        assert_eq!(app.context(), Context::Users);
    }

    #[test]
    fn esc_cancels_a_form_and_sends_nothing() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('4'));
        key(&mut app, KeyCode::Char('a'));
        typed(&mut app, "dave");
        assert!(key(&mut app, KeyCode::Esc).is_empty());
        assert!(app.form.is_none());
        assert!(app.confirm.is_none());
        assert_eq!(app.context(), Context::Users);
    }

    #[test]
    fn a_second_administrator_approves_a_pending_request_after_confirming() {
        let mut app = up();
        let effects = ok(&mut app, Purpose::Login, session(&["bob"]));
        assert!(sent(&effects).contains(&Purpose::Pending));
        ok(
            &mut app,
            Purpose::Pending,
            json!([{"id": 12, "requested_by": "alice", "channel": "serial:ttyS0",
                    "operation": "user reset carol", "requested": "t", "expires": "t"}]),
        );
        // Form → Logged in → Pending approvals.
        key(&mut app, KeyCode::Tab);
        key(&mut app, KeyCode::Tab);
        assert_eq!(app.context(), Context::SessionUsers);
        key(&mut app, KeyCode::Tab);
        assert_eq!(app.context(), Context::SessionPending);
        assert!(key(&mut app, KeyCode::Enter).is_empty(), "asks first");
        let confirm = app.confirm.clone().unwrap();
        assert!(
            confirm
                .effect
                .contains("request 12 from alice (serial:ttyS0): user reset carol")
        );
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [Effect::Send {
                purpose: Purpose::Approve(12),
                request: Request::Approve { id: 12 },
            }]
        );
        // The approved request's answer: here a one-time password, shown once.
        let effects = ok(
            &mut app,
            Purpose::Approve(12),
            json!({"name": "carol", "one_time_password": "abc-def"}),
        );
        assert_eq!(app.context(), Context::Reveal);
        assert!(
            effects.is_empty() && app.awaiting(Purpose::Pending),
            "the list is asked again"
        );
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.context(), Context::SessionPending);
    }

    #[test]
    fn an_approved_rotation_names_its_job_and_auditors_are_not_asked() {
        let mut app = dual();
        ok(&mut app, Purpose::Approve(5), json!({"job": 31}));
        assert!(app.notice.as_deref().unwrap().contains("job 31"));
        let mut auditor = up();
        let effects = ok(
            &mut auditor,
            Purpose::Login,
            json!({"channel": "console", "dual_control": false, "users": [
                {"name": "erin", "role": "auditor", "must_change_password": false}]}),
        );
        assert!(!sent(&effects).contains(&Purpose::Pending));
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
    fn help_opens_over_the_screen_and_closes_with_q() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('?'));
        assert_eq!(app.context(), Context::Help);
        assert_eq!(app.screen_context(), Context::SessionUsers);
        key(&mut app, KeyCode::Char('q'));
        assert_eq!(app.context(), Context::SessionUsers);
        assert!(
            app.confirm.is_none(),
            "q closed the help, it did not ask to quit"
        );
    }

    fn credentials() -> serde_json::Value {
        json!([
            {"name": "prod", "access_key_id": "****************MPLE", "created": "t",
             "last_used": "never", "groups": ["payments", "billing"]},
            {"name": "spare", "access_key_id": "****************WXYZ", "created": "t",
             "last_used": "never", "groups": []},
        ])
    }

    #[test]
    fn adding_a_credential_moves_the_secret_into_the_request_only() {
        let mut app = dual();
        assert_eq!(
            sent(&key(&mut app, KeyCode::Char('5'))),
            [Purpose::CredentialList]
        );
        ok(&mut app, Purpose::CredentialList, credentials());
        key(&mut app, KeyCode::Char('a'));
        assert_eq!(app.context(), Context::Form);
        typed(&mut app, "dev");
        key(&mut app, KeyCode::Tab);
        typed(&mut app, "AKIAIOSFODNN7EXAMPLE");
        key(&mut app, KeyCode::Tab);
        typed(&mut app, "wJalrXUtnFEMI/K7MDENG");
        {
            let form = app.form.as_ref().unwrap();
            assert_eq!(form.fields[2].shown(), "*".repeat(21));
            assert_eq!(form.value(2), "", "the secret is not read as text");
        }
        assert!(key(&mut app, KeyCode::Enter).is_empty(), "asks first");
        assert!(app.form.is_none(), "the form (and its field) is gone");
        let confirm = app.confirm.clone().unwrap();
        assert!(
            confirm
                .effect
                .contains("Add credential dev with access key id ****************MPLE")
        );
        assert!(!confirm.effect.contains("wJalr"));
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [Effect::Send {
                purpose: Purpose::CredentialAdd,
                request: Request::CredentialAdd {
                    name: "dev".into(),
                    access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                    secret_access_key: Password::new("wJalrXUtnFEMI/K7MDENG"),
                },
            }]
        );
        let effects = ok(
            &mut app,
            Purpose::CredentialAdd,
            json!({"name": "dev", "access_key_id": "****************MPLE", "created": "t",
                   "last_used": "never", "groups": []}),
        );
        assert_eq!(sent(&effects), [Purpose::CredentialList]);
        assert_eq!(
            app.notice.as_deref(),
            Some("Credential dev stored (access key id ****MPLE).")
        );
    }

    #[test]
    fn importing_a_credential_sends_the_name_and_path() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('5'));
        key(&mut app, KeyCode::Char('i'));
        typed(&mut app, "prod");
        key(&mut app, KeyCode::Enter);
        typed(&mut app, "/media/usb/prod_accessKeys.csv");
        key(&mut app, KeyCode::Enter);
        assert!(
            app.confirm
                .as_ref()
                .unwrap()
                .effect
                .starts_with("Import credential prod from /media/usb/prod_accessKeys.csv")
        );
        assert_eq!(
            key(&mut app, KeyCode::Enter),
            [Effect::Send {
                purpose: Purpose::CredentialImport,
                request: Request::CredentialImport {
                    name: "prod".into(),
                    path: "/media/usb/prod_accessKeys.csv".into(),
                },
            }]
        );
        // A refusal is shown with its code; the list is not asked again.
        let effects = refused(
            &mut app,
            Purpose::CredentialImport,
            ErrorCode::Invalid,
            "no such file",
        );
        assert!(effects.is_empty());
        assert_eq!(
            app.error.as_ref().map(ErrorLine::text).as_deref(),
            Some("invalid: no such file")
        );
    }

    #[test]
    fn removing_a_credential_names_the_groups_that_use_it() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('5'));
        ok(&mut app, Purpose::CredentialList, credentials());
        key(&mut app, KeyCode::Char('D'));
        let effect = app.confirm.clone().unwrap().effect;
        assert!(
            effect.starts_with("Remove credential prod: groups using it (payments, billing) could no longer reach AWS"),
            "{effect}"
        );
        key(&mut app, KeyCode::Char('n'));
        key(&mut app, KeyCode::Char('j'));
        key(&mut app, KeyCode::Char('D'));
        assert!(
            app.confirm
                .as_ref()
                .unwrap()
                .effect
                .contains("no group uses it")
        );
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [Effect::Send {
                purpose: Purpose::CredentialRemove,
                request: Request::CredentialRemove {
                    name: "spare".into()
                },
            }]
        );
        let effects = ok(
            &mut app,
            Purpose::CredentialRemove,
            json!({"removed": "spare"}),
        );
        assert_eq!(sent(&effects), [Purpose::CredentialList]);
        assert_eq!(app.notice.as_deref(), Some("Removed spare."));
    }

    #[test]
    fn cancelling_the_add_form_sends_nothing() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('5'));
        key(&mut app, KeyCode::Char('a'));
        typed(&mut app, "x");
        key(&mut app, KeyCode::Tab);
        key(&mut app, KeyCode::Tab);
        typed(&mut app, "secret");
        assert!(key(&mut app, KeyCode::Esc).is_empty());
        assert!(app.form.is_none() && app.confirm.is_none());
        assert_eq!(app.context(), Context::Credentials);
    }

    fn record(seq: u64, actor: &str, action: &str) -> serde_json::Value {
        json!({"seq": seq, "time": format!("2026-11-24T10:{:02}:00.000Z", seq % 60),
               "actors": [actor], "channel": "console", "action": action, "target": "t",
               "outcome": "success", "details": {}, "hash": format!("{seq:064x}")})
    }

    fn records(from: u64, to: u64) -> serde_json::Value {
        json!(
            (from..=to)
                .map(|s| record(s, if s % 2 == 0 { "alice" } else { "bob" }, "user.add"))
                .collect::<Vec<_>>()
        )
    }

    fn with_status(app: &mut App, head: u64) {
        let mut status: serde_json::Value = serde_json::from_str(
            r#"{"version": "0.1.0",
                "hsm": {"state": "ok", "token_label": "k", "serial": "s", "manufacturer": "m",
                        "model": "m", "wrap_algorithms": [], "missing_keys": []},
                "store": {"path": "p", "schema_version": 3, "size_bytes": 1, "users": 1, "keys": 1},
                "audit": {"records": 0, "head_seq": 0, "head_hash": "h"},
                "hardening": {},
                "scheduler": {"state": "running", "designated": true, "scheduled_groups": 0,
                              "next_due": null, "running_rotations": 0, "concurrency": 4}}"#,
        )
        .unwrap();
        status["audit"]["head_seq"] = json!(head);
        status["audit"]["records"] = json!(head);
        ok(app, Purpose::Status, status);
        assert!(app.status.is_some());
    }

    fn list_request(effects: &[Effect]) -> Option<(Purpose, Option<u64>, Option<usize>)> {
        effects.iter().find_map(|e| match e {
            Effect::Send {
                purpose,
                request: Request::AuditList { from, limit },
            } => Some((*purpose, *from, *limit)),
            _ => None,
        })
    }

    #[test]
    fn the_audit_screen_asks_for_the_last_page_then_older_ones_at_the_top() {
        let mut app = dual();
        with_status(&mut app, 250);
        let effects = key(&mut app, KeyCode::Char('6'));
        assert_eq!(app.screen, Screen::Audit);
        assert_eq!(
            list_request(&effects),
            Some((Purpose::AuditNewer, Some(151), Some(AUDIT_PAGE)))
        );
        ok(&mut app, Purpose::AuditNewer, records(151, 250));
        assert_eq!(
            app.audit.selected_record().map(|r| r.seq),
            Some(250),
            "newest last, selected"
        );
        // A full page may mean newer records since the status: they are asked for.
        assert!(app.awaiting(Purpose::AuditNewer));
        ok(&mut app, Purpose::AuditNewer, records(251, 252));
        assert_eq!(app.audit.last_seq(), Some(252));
        assert!(!app.awaiting(Purpose::AuditNewer));
        // PgUp moves by ten; reaching the top asks for the page before.
        assert!(key(&mut app, KeyCode::PageUp).is_empty());
        assert_eq!(app.audit.selected_record().map(|r| r.seq), Some(242));
        let effects = key(&mut app, KeyCode::Home);
        assert_eq!(
            list_request(&effects),
            Some((Purpose::AuditOlder, Some(51), Some(100)))
        );
        ok(&mut app, Purpose::AuditOlder, records(51, 150));
        assert_eq!(app.audit.first_seq(), Some(51));
        assert_eq!(
            app.audit.selected_record().map(|r| r.seq),
            Some(151),
            "the selection stays on its record"
        );
        let effects = key(&mut app, KeyCode::PageUp);
        assert!(list_request(&effects).is_none(), "not at the top yet");
        key(&mut app, KeyCode::Home);
        ok(&mut app, Purpose::AuditOlder, records(1, 50));
        key(&mut app, KeyCode::Home);
        assert!(app.audit.has_first());
        assert!(
            list_request(&key(&mut app, KeyCode::Up)).is_none(),
            "nothing older"
        );
        assert_eq!(app.audit.records.len(), 252);
        // G follows the newest again; r asks for what is newer.
        key(&mut app, KeyCode::Char('G'));
        assert_eq!(app.audit.selected, None);
        assert_eq!(
            list_request(&key(&mut app, KeyCode::Char('r'))),
            Some((Purpose::AuditNewer, Some(253), Some(AUDIT_PAGE)))
        );
        ok(&mut app, Purpose::AuditNewer, records(253, 253));
        assert_eq!(app.audit.selected_record().map(|r| r.seq), Some(253));
    }

    #[test]
    fn without_a_status_the_audit_screen_asks_for_the_head_first() {
        let mut app = dual();
        app.status = None;
        app.awaiting.clear();
        let effects = key(&mut app, KeyCode::Char('6'));
        assert_eq!(sent(&effects), [Purpose::Status]);
        let effects = {
            let mut status_app_effects = Vec::new();
            let mut probe = dual();
            with_status(&mut probe, 3);
            let status = serde_json::to_value(probe.status.as_ref().unwrap()).unwrap();
            status_app_effects.extend(ok(&mut app, Purpose::Status, status));
            status_app_effects
        };
        assert_eq!(
            list_request(&effects),
            Some((Purpose::AuditNewer, Some(1), Some(AUDIT_PAGE)))
        );
    }

    #[test]
    fn the_audit_filter_matches_actor_action_or_time() {
        let mut app = dual();
        with_status(&mut app, 4);
        key(&mut app, KeyCode::Char('6'));
        ok(
            &mut app,
            Purpose::AuditNewer,
            json!([
                record(1, "alice", "login"),
                record(2, "bob", "user.add"),
                record(3, "alice", "credential.add"),
                record(4, "carol", "login")
            ]),
        );
        key(&mut app, KeyCode::Char('/'));
        assert_eq!(app.context(), Context::AuditFilter);
        typed(&mut app, "ALICE");
        assert_eq!(app.audit.visible().len(), 2);
        key(&mut app, KeyCode::Char('u')); // Ctrl-less u is text
        assert_eq!(app.audit.visible().len(), 0);
        key(&mut app, KeyCode::Backspace);
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.context(), Context::Audit);
        assert_eq!(app.audit.selected_record().map(|r| r.seq), Some(3));
        key(&mut app, KeyCode::Char('/'));
        app.handle(Event::Key(KeyEvent::new(
            KeyCode::Char('u'),
            KeyModifiers::CONTROL,
        )));
        typed(&mut app, "login");
        assert_eq!(app.audit.visible().len(), 2);
        key(&mut app, KeyCode::Char('/')); // still typing
        key(&mut app, KeyCode::Backspace);
        app.handle(Event::Key(KeyEvent::new(
            KeyCode::Char('u'),
            KeyModifiers::CONTROL,
        )));
        typed(&mut app, "10:02");
        assert_eq!(
            app.audit
                .visible()
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>(),
            [2],
            "time text"
        );
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.audit.visible().len(), 4, "Esc clears it");
        assert_eq!(app.context(), Context::Audit);
    }

    #[test]
    fn enter_shows_a_record_and_v_verifies() {
        let mut app = dual();
        with_status(&mut app, 2);
        key(&mut app, KeyCode::Char('6'));
        let mut detailed = record(2, "alice", "user.remove");
        detailed["actors"] = json!(["alice", "bob"]);
        detailed["details"] = json!({"role": "auditor", "approval": "431"});
        ok(
            &mut app,
            Purpose::AuditNewer,
            json!([record(1, "bob", "login"), detailed]),
        );
        assert!(key(&mut app, KeyCode::Enter).is_empty());
        assert_eq!(app.context(), Context::Info);
        let info = app.info.clone().unwrap();
        assert_eq!(info.title, "Audit record #2");
        assert!(info.lines.contains(&("Actors".into(), "alice, bob".into())));
        assert!(
            info.lines
                .contains(&("Details".into(), "approval = 431".into()))
        );
        assert!(info.lines.contains(&("".into(), "role = auditor".into())));
        assert!(info.lines.contains(&("Hash".into(), format!("{:064x}", 2))));
        assert!(
            key(&mut app, KeyCode::Char('v')).is_empty(),
            "v does nothing in the dialog"
        );
        key(&mut app, KeyCode::Esc);
        assert!(app.info.is_none());
        assert_eq!(
            sent(&key(&mut app, KeyCode::Char('v'))),
            [Purpose::AuditVerify]
        );
        ok(
            &mut app,
            Purpose::AuditVerify,
            json!({"intact": true, "records": 2, "head_seq": 2,
                   "head_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}),
        );
        let info = app.info.clone().unwrap();
        assert_eq!(
            info.lines[0].1,
            "intact: 2 records, head #2 9f86d081884c7d65…"
        );
        assert!(!info.bad);
        key(&mut app, KeyCode::Enter);
        // A broken chain: the `audit` error is shown in the dialog, naming the record.
        key(&mut app, KeyCode::Char('v'));
        refused(
            &mut app,
            Purpose::AuditVerify,
            ErrorCode::Audit,
            "record 7: hash does not match its contents",
        );
        let info = app.info.clone().unwrap();
        assert!(info.bad);
        assert_eq!(
            info.lines[0].1,
            "audit: record 7: hash does not match its contents"
        );
        assert!(app.error.is_none());
        // Any other error stays on the error line.
        key(&mut app, KeyCode::Esc);
        key(&mut app, KeyCode::Char('v'));
        refused(
            &mut app,
            Purpose::AuditVerify,
            ErrorCode::Auth,
            "not logged in",
        );
        assert!(app.info.is_none());
        assert_eq!(
            app.error.as_ref().map(ErrorLine::text).as_deref(),
            Some("auth: not logged in")
        );
    }

    #[test]
    fn when_everyone_leaves_the_lists_are_forgotten() {
        let mut app = dual();
        with_status(&mut app, 20);
        key(&mut app, KeyCode::Char('6'));
        ok(&mut app, Purpose::AuditNewer, records(1, 20));
        assert_eq!(app.audit.records.len(), 20);
        key(&mut app, KeyCode::Char('5'));
        ok(&mut app, Purpose::CredentialList, credentials());
        assert_eq!(app.credentials.list.len(), 2);
        ok(&mut app, Purpose::Logout, session(&[]));
        assert!(app.credentials.list.is_empty() && !app.credentials.loaded);
        assert!(app.audit.records.is_empty());
    }

    pub(super) fn group(name: &str, alias: &str) -> serde_json::Value {
        json!({"name": name, "credential": "prod", "region": "eu-west-1", "endpoint": null,
               "alias": alias, "description": "", "active_key_id": null, "policy_file": null,
               "policy": null, "disable_previous": false, "rotate_every": "90d",
               "valid_for": "365d", "rotation_mode": "new-key", "tags": {},
               "active_key": null, "keys": 2, "created": "2026-01-01T00:00:00.000Z"})
    }
    pub(super) fn kms_key(
        id: &str,
        group: &str,
        state: &str,
        aws: &str,
        alias: Option<&str>,
    ) -> serde_json::Value {
        json!({"id": id, "group": group, "state": state, "fingerprint": "a1b2c3",
               "aws_key_id": aws, "aws_arn": null, "aws_key_state": null, "alias": alias,
               "created": "2026-08-26T10:00:00.000Z", "valid_to": "forever",
               "expires_soon": false})
    }
    fn keydb(app: &mut App) {
        let effects = key(app, KeyCode::Char('7'));
        assert_eq!(
            sent(&effects),
            [Purpose::GroupList, Purpose::KeyList, Purpose::ScheduleList]
        );
        assert!(effects.contains(&Effect::Send {
            purpose: Purpose::KeyList,
            request: Request::KeyList { group: None },
        }));
        ok(
            app,
            Purpose::GroupList,
            json!([
                group("payments", "alias/payments"),
                group("billing", "alias/billing")
            ]),
        );
        ok(
            app,
            Purpose::KeyList,
            json!([
                kms_key("aa01", "payments", "previous", "1111-aaaa", None),
                kms_key(
                    "aa02",
                    "payments",
                    "active",
                    "2222-bbbb",
                    Some("alias/payments")
                ),
                kms_key(
                    "bb01",
                    "billing",
                    "active",
                    "3333-cccc",
                    Some("alias/billing")
                ),
            ]),
        );
        ok(app, Purpose::ScheduleList, json!([]));
    }

    #[test]
    fn the_key_database_is_a_tree_that_folds() {
        let mut app = dual();
        keydb(&mut app);
        assert_eq!(app.context(), Context::Keys);
        assert_eq!(app.keydb.rows().len(), 5, "both groups open");
        key(&mut app, KeyCode::Down);
        assert_eq!(
            app.keydb.selected_key().map(|k| k.id.as_str()),
            Some("aa01")
        );
        // ← on a key folds its group and selects the group.
        key(&mut app, KeyCode::Left);
        assert_eq!(app.keydb.rows().len(), 3);
        assert_eq!(app.keydb.selected, 0);
        assert!(app.keydb.selected_key().is_none());
        assert_eq!(
            app.keydb.selected_group().map(|g| g.name.as_str()),
            Some("payments")
        );
        key(&mut app, KeyCode::Char(' '));
        assert_eq!(app.keydb.rows().len(), 5, "Space unfolds");
        key(&mut app, KeyCode::Char('G'));
        assert_eq!(
            app.keydb.selected_key().map(|k| k.id.as_str()),
            Some("bb01")
        );
        assert_eq!(
            app.keydb.selected_group().map(|g| g.name.as_str()),
            Some("billing")
        );
        // r asks for both again.
        assert_eq!(
            sent(&key(&mut app, KeyCode::Char('r'))),
            [Purpose::GroupList, Purpose::KeyList, Purpose::ScheduleList]
        );
    }

    #[test]
    fn the_key_filter_matches_group_key_aws_id_or_alias() {
        let mut app = dual();
        keydb(&mut app);
        key(&mut app, KeyCode::Char('/'));
        assert_eq!(app.context(), Context::KeysFilter);
        typed(&mut app, "2222");
        let rows = app.keydb.rows();
        assert_eq!(rows.len(), 2, "the group and its matching key");
        assert!(matches!(rows[1], TreeRow::Key(k) if k.id == "aa02"));
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.context(), Context::Keys);
        key(&mut app, KeyCode::Char('/'));
        app.handle(Event::Key(KeyEvent::new(
            KeyCode::Char('u'),
            KeyModifiers::CONTROL,
        )));
        typed(&mut app, "alias/bill");
        assert_eq!(
            app.keydb.rows().len(),
            2,
            "the group's alias matches: all its keys"
        );
        app.handle(Event::Key(KeyEvent::new(
            KeyCode::Char('u'),
            KeyModifiers::CONTROL,
        )));
        typed(&mut app, "BB01");
        assert_eq!(app.keydb.rows().len(), 2);
        typed(&mut app, "x");
        assert!(app.keydb.rows().is_empty());
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.keydb.rows().len(), 5, "Esc clears it");
        // Logging out forgets the tree.
        ok(&mut app, Purpose::Logout, session(&[]));
        assert!(app.keydb.groups.is_empty() && !app.keydb.loaded());
    }

    #[test]
    fn force_rotate_names_the_alias_and_offers_the_job() {
        let mut app = dual();
        keydb(&mut app);
        assert!(key(&mut app, KeyCode::Char('R')).is_empty(), "asks first");
        let confirm = app.confirm.clone().unwrap();
        assert_eq!(
            confirm.effect,
            "Force rotate group payments: a new key is generated and alias/payments moves to it; the previous key stays enabled. It runs as a job."
        );
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [Effect::Send {
                purpose: Purpose::GroupRotate,
                request: Request::GroupRotate {
                    name: "payments".into()
                },
            }]
        );
        let effects = ok(&mut app, Purpose::GroupRotate, json!({"job": 12}));
        assert_eq!(sent(&effects), [Purpose::JobList]);
        let offer = app.confirm.clone().unwrap();
        assert_eq!(offer.then, Confirmable::OpenJob(12));
        assert!(offer.effect.contains("job 12"));
        let effects = key(&mut app, KeyCode::Enter);
        assert_eq!(app.screen, Screen::JobLog);
        assert_eq!(app.job_log.as_ref().map(|l| l.id), Some(12));
        assert_eq!(
            sent(&effects),
            [Purpose::JobLog(12), Purpose::JobShow(12)],
            "the job list is already on its way"
        );
        ok(&mut app, Purpose::JobShow(12), job(12, "running"));
        assert!(app.job_log.as_ref().unwrap().job.is_some());
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.screen, Screen::Jobs);
    }

    #[test]
    fn a_key_row_rotates_its_group_and_n_keeps_the_screen() {
        let mut app = dual();
        keydb(&mut app);
        key(&mut app, KeyCode::Char('G'));
        key(&mut app, KeyCode::Char('R'));
        assert!(
            app.confirm
                .as_ref()
                .unwrap()
                .effect
                .contains("group billing")
        );
        key(&mut app, KeyCode::Char('n'));
        assert!(app.confirm.is_none());
        // D removes groups only.
        key(&mut app, KeyCode::Char('D'));
        assert!(app.confirm.is_none());
        assert!(app.notice.as_deref().unwrap().starts_with("Select a group"));
        key(&mut app, KeyCode::Char('k'));
        key(&mut app, KeyCode::Char('D'));
        let confirm = app.confirm.clone().unwrap();
        assert!(
            confirm
                .effect
                .contains("it holds 1 key, so the daemon refuses")
        );
        key(&mut app, KeyCode::Char('y'));
        let effects = ok(
            &mut app,
            Purpose::GroupRemove,
            json!({"removed": "billing"}),
        );
        assert_eq!(
            sent(&effects),
            [Purpose::GroupList, Purpose::KeyList, Purpose::ScheduleList]
        );
        assert_eq!(app.notice.as_deref(), Some("Removed group billing."));
    }

    #[test]
    fn the_test_dialog_shows_each_check() {
        let mut app = dual();
        keydb(&mut app);
        assert_eq!(
            key(&mut app, KeyCode::Char('t')),
            [Effect::Send {
                purpose: Purpose::GroupTest,
                request: Request::GroupTest {
                    name: "payments".into()
                },
            }]
        );
        ok(
            &mut app,
            Purpose::GroupTest,
            json!({"group": "payments", "connection": "Not connected",
                   "endpoint": "https://kms.eu-west-1.amazonaws.com",
                   "checks": [{"permission": "kms:ListAliases", "ok": false,
                               "detail": "AccessDenied"}]}),
        );
        let info = app.info.clone().unwrap();
        assert!(info.bad);
        assert_eq!(info.lines[0], ("Connection".into(), "Not connected".into()));
        assert_eq!(
            info.lines[2],
            ("kms:ListAliases".into(), "FAILED: AccessDenied".into())
        );
    }

    #[test]
    fn synchronise_has_three_boxes_and_names_what_happens() {
        let mut app = dual();
        keydb(&mut app);
        key(&mut app, KeyCode::Char('s'));
        assert!(app.form.is_none(), "s works on a key row");
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Char('s'));
        let form = app.form.as_ref().unwrap();
        assert_eq!(form.target, "aa01");
        assert!(!form.checked(0) && form.checked(1) && form.checked(2));
        key(&mut app, KeyCode::Char(' ')); // delete material: on
        key(&mut app, KeyCode::Tab);
        key(&mut app, KeyCode::Char(' ')); // update policy: off
        key(&mut app, KeyCode::Enter);
        key(&mut app, KeyCode::Enter);
        let confirm = app.confirm.clone().unwrap();
        assert!(
            confirm
                .effect
                .starts_with("Synchronise key aa01 with AWS: delete its key material")
        );
        assert!(!confirm.effect.contains("policy"));
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [Effect::Send {
                purpose: Purpose::KeySync,
                request: Request::KeySync {
                    key: "aa01".into(),
                    delete_material: true,
                    update_policy: false,
                    import_material: true,
                },
            }]
        );
        ok(&mut app, Purpose::KeySync, json!({"job": 13}));
        assert_eq!(app.confirm.as_ref().unwrap().then, Confirmable::OpenJob(13));
        key(&mut app, KeyCode::Char('n'));
        assert_eq!(app.screen, Screen::Keys);
        // Nothing checked: nothing to confirm.
        key(&mut app, KeyCode::Char('s'));
        key(&mut app, KeyCode::Tab);
        key(&mut app, KeyCode::Char(' '));
        key(&mut app, KeyCode::Tab);
        key(&mut app, KeyCode::Char(' '));
        key(&mut app, KeyCode::Enter);
        assert!(app.confirm.is_none());
        assert!(app.notice.as_deref().unwrap().starts_with("Nothing to do"));
    }

    #[test]
    fn the_context_menu_lists_the_rows_actions() {
        let mut app = dual();
        keydb(&mut app);
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.context(), Context::Menu);
        let keys: Vec<char> = app
            .menu
            .as_ref()
            .unwrap()
            .items
            .iter()
            .map(|i| i.0)
            .collect();
        assert_eq!(keys, ['e', 't', 'R', 'D', ' ']);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Enter);
        assert!(app.menu.is_none());
        assert!(
            app.confirm
                .as_ref()
                .unwrap()
                .title
                .starts_with("Force rotate payments")
        );
        key(&mut app, KeyCode::Esc);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Char('m'));
        let keys: Vec<char> = app
            .menu
            .as_ref()
            .unwrap()
            .items
            .iter()
            .map(|i| i.0)
            .collect();
        assert_eq!(keys, ['s', 't', 'R']);
        // The action's key picks it at once.
        let effects = key(&mut app, KeyCode::Char('t'));
        assert_eq!(sent(&effects), [Purpose::GroupTest]);
        assert!(app.menu.is_none());
        key(&mut app, KeyCode::Char('m'));
        key(&mut app, KeyCode::Esc);
        assert!(app.menu.is_none());
        assert_eq!(app.context(), Context::Keys);
    }

    #[test]
    fn a_failed_job_is_retried_after_confirming() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('3'));
        let mut failed = job(7, "failed");
        failed["step"] = json!("import_key_material");
        ok(
            &mut app,
            Purpose::JobList,
            json!([job(8, "running"), failed]),
        );
        key(&mut app, KeyCode::Char('y'));
        assert!(app.confirm.is_none());
        assert!(app.notice.as_deref().unwrap().contains("only a failed job"));
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Char('y'));
        assert_eq!(
            app.confirm.as_ref().unwrap().effect,
            "Retry job 7 (rotate payments): it is queued again and runs from import_key_material, the step that failed."
        );
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [Effect::Send {
                purpose: Purpose::JobRetry,
                request: Request::JobRetry { id: 7 },
            }]
        );
        let mut queued = job(7, "queued");
        queued["step"] = json!("import_key_material");
        let effects = ok(&mut app, Purpose::JobRetry, queued);
        assert_eq!(sent(&effects), [Purpose::JobList]);
        assert_eq!(
            app.notice.as_deref(),
            Some("Job 7 is queued again, from import_key_material.")
        );
    }

    #[test]
    fn the_schedule_of_the_selected_group_is_shown() {
        let mut app = dual();
        keydb(&mut app);
        ok(
            &mut app,
            Purpose::ScheduleList,
            json!([{"group": "billing", "rotate_every": "90d", "next_due": "now",
                    "last_success": null, "last_result": "job 8 failed: cloud: throttled",
                    "delay": "waiting to retry"}]),
        );
        assert!(app.keydb.schedule_loaded);
        assert!(app.keydb.selected_schedule().is_none(), "payments has none");
        key(&mut app, KeyCode::Char('G'));
        let schedule = app.keydb.selected_schedule().unwrap();
        assert_eq!(schedule.delay.as_deref(), Some("waiting to retry"));
    }
}
