//! Keys to actions: one closed [`Action`] enum, one mapping per [`Context`], and the
//! bindings the footer and the help overlay show (one table, so they cannot disagree).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Where the keyboard is: decides what a key means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A confirm dialog is open.
    Confirm,
    /// The help overlay is open.
    Help,
    /// Typing into the login form.
    LoginForm,
    /// The "Logged in" pane of the Session screen.
    SessionUsers,
    /// The "Pending approvals" pane of the Session screen.
    SessionPending,
    Status,
    Jobs,
    /// Typing a filter for the jobs list.
    JobsFilter,
    JobLog,
    /// The Users screen: the accounts.
    Users,
    /// The Credentials screen: AWS key pairs.
    Credentials,
    /// The Audit screen: the trail.
    Audit,
    /// Typing a filter for the audit trail.
    AuditFilter,
    /// The key database: groups and their keys.
    Keys,
    /// Typing a filter for the key database.
    KeysFilter,
    /// A context menu of the actions for the selected row.
    Menu,
    /// A read-only dialog (an audit record, the verification result).
    Info,
    /// A form dialog (add a user, import or add a credential).
    Form,
    /// A secret shown once (a one-time password); closing it wipes it.
    Reveal,
}

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ctrl-C: leave at once (the terminal is restored; the daemon logs the session out).
    Quit,
    /// q or Esc: close what is open, or go back; at the top, offer to quit.
    Back,
    Help,
    NextPane,
    PrevPane,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Enter: open the selection, or submit the form.
    Open,
    Filter,
    Refresh,
    /// Go to tab N (1-based).
    Goto(u8),
    /// Log the selected user out.
    Logout,
    /// p (Session): change the selected user's password.
    Passwd,
    /// a: add (a user, a credential by hand); n on Keys: a new key group.
    Add,
    /// i: import a credential from an AWS CSV file.
    Import,
    /// v: verify the audit trail.
    Verify,
    /// l: lock the selected account.
    Lock,
    /// u: unlock the selected account.
    Unlock,
    /// R: reset the selected account's password.
    Reset,
    /// D: remove the selected item.
    Remove,
    /// ← and →: change a choice in a form; fold or unfold a group.
    Left,
    Right,
    /// Space: fold or unfold a group.
    Toggle,
    /// t: test a group's connection to AWS.
    Test,
    /// R (Keys): force-rotate a group.
    Rotate,
    /// s: synchronise a key with AWS.
    Sync,
    /// m (or Enter on the key database): the context menu.
    Menu,
    /// y (Jobs): retry a failed job.
    Retry,
    /// e (Keys): edit the selected group.
    Edit,
    /// d (Status): designate this appliance as the scheduled rotator, or stop it being one.
    Designate,
    Input(char),
    Backspace,
    ClearInput,
    Confirm,
    Cancel,
}

/// What a key does in `context`; `None` when it does nothing there.
pub fn map(context: Context, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if key.code == KeyCode::F(1) {
        return Some(if context == Context::Help {
            Action::Back
        } else {
            Action::Help
        });
    }
    match context {
        Context::Confirm => match key.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => Some(Action::Confirm),
            KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => Some(Action::Cancel),
            _ => None,
        },
        Context::Menu => match key.code {
            KeyCode::Enter => Some(Action::Open),
            KeyCode::Esc | KeyCode::Char('q') => Some(Action::Back),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::Char(c) if !ctrl => Some(Action::Input(c)),
            _ => None,
        },
        Context::Help => match key.code {
            KeyCode::Char('?' | 'q') | KeyCode::Esc => Some(Action::Back),
            _ => None,
        },
        Context::Reveal => match key.code {
            KeyCode::Enter | KeyCode::Esc | KeyCode::Char('q') => Some(Action::Back),
            _ => None,
        },
        Context::Info => match key.code {
            KeyCode::Enter | KeyCode::Esc | KeyCode::Char('q') => Some(Action::Back),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::Top),
            _ => None,
        },
        Context::LoginForm
        | Context::JobsFilter
        | Context::AuditFilter
        | Context::KeysFilter
        | Context::Form => match key.code {
            KeyCode::Char('u') if ctrl => Some(Action::ClearInput),
            KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
                Some(Action::Input(c))
            }
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Enter => Some(Action::Open),
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Tab => Some(Action::NextPane),
            KeyCode::BackTab => Some(Action::PrevPane),
            KeyCode::Up => Some(Action::Up),
            KeyCode::Down => Some(Action::Down),
            KeyCode::Left => Some(Action::Left),
            KeyCode::Right => Some(Action::Right),
            _ => None,
        },
        Context::SessionUsers
        | Context::SessionPending
        | Context::Status
        | Context::Jobs
        | Context::JobLog
        | Context::Users
        | Context::Credentials
        | Context::Audit
        | Context::Keys => {
            let action = match key.code {
                KeyCode::Char('?') => Action::Help,
                KeyCode::Char('q') | KeyCode::Esc => Action::Back,
                KeyCode::Tab => Action::NextPane,
                KeyCode::BackTab => Action::PrevPane,
                KeyCode::Up | KeyCode::Char('k') => Action::Up,
                KeyCode::Down | KeyCode::Char('j') => Action::Down,
                KeyCode::PageUp => Action::PageUp,
                KeyCode::PageDown => Action::PageDown,
                KeyCode::Home | KeyCode::Char('g') => Action::Top,
                KeyCode::End | KeyCode::Char('G') => Action::Bottom,
                KeyCode::Enter => Action::Open,
                KeyCode::Char('/')
                    if matches!(context, Context::Jobs | Context::Audit | Context::Keys) =>
                {
                    Action::Filter
                }
                KeyCode::Left | KeyCode::Char('h') if context == Context::Keys => Action::Left,
                KeyCode::Right | KeyCode::Char('l') if context == Context::Keys => Action::Right,
                KeyCode::Char(' ') if context == Context::Keys => Action::Toggle,
                KeyCode::Char('t') if context == Context::Keys => Action::Test,
                KeyCode::Char('R') if context == Context::Keys => Action::Rotate,
                KeyCode::Char('s') if context == Context::Keys => Action::Sync,
                KeyCode::Char('D') if context == Context::Keys => Action::Remove,
                KeyCode::Char('m') if context == Context::Keys => Action::Menu,
                KeyCode::Char('n') if context == Context::Keys => Action::Add,
                KeyCode::Char('e') if context == Context::Keys => Action::Edit,
                KeyCode::Char('d') if context == Context::Status => Action::Designate,
                KeyCode::Char('y') if context == Context::Jobs => Action::Retry,
                KeyCode::Char('v') if context == Context::Audit => Action::Verify,
                KeyCode::Char('r') => Action::Refresh,
                KeyCode::Char('x') if context == Context::SessionUsers => Action::Logout,
                KeyCode::Char('p') if context == Context::SessionUsers => Action::Passwd,
                KeyCode::Char('a') if context == Context::Users => Action::Add,
                KeyCode::Char('l') if context == Context::Users => Action::Lock,
                KeyCode::Char('u') if context == Context::Users => Action::Unlock,
                KeyCode::Char('R') if context == Context::Users => Action::Reset,
                KeyCode::Char('D') if context == Context::Users => Action::Remove,
                KeyCode::Char('a') if context == Context::Credentials => Action::Add,
                KeyCode::Char('i') if context == Context::Credentials => Action::Import,
                KeyCode::Char('D') if context == Context::Credentials => Action::Remove,
                KeyCode::Char(c @ '1'..='9') => Action::Goto(c as u8 - b'0'),
                _ => return None,
            };
            Some(action)
        }
    }
}

/// One line of help: the keys, a word or two for the footer, a sentence for `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub keys: &'static str,
    pub short: &'static str,
    pub long: &'static str,
}

/// A `'static` slice of bindings (a `const`, so the bindings need no allocation).
macro_rules! list {
    ($($binding:expr),* $(,)?) => {{
        const LIST: &[Binding] = &[$($binding),*];
        LIST
    }};
}

const fn b(keys: &'static str, short: &'static str, long: &'static str) -> Binding {
    Binding { keys, short, long }
}

pub const HELP: Binding = b("?", "help", "Show the keys of this screen (F1 too)");
/// Where letters are text (fields, filters), help is on F1.
const F1_HELP: Binding = b("F1", "help", "Show the keys of this screen");
const QUIT_NOW: Binding = b(
    "Ctrl-C",
    "",
    "Leave at once; the daemon logs this console's users out",
);
/// `1`-N: one per tab of [`crate::app::TABS`] (a test keeps them equal).
pub const TABS: Binding = b(
    "1-7",
    "screens",
    "Go to Session, Status, Jobs, Users, Credentials, Audit or Keys",
);
const BACK_TOP: Binding = b("q/Esc", "quit", "Leave the console (asks first)");

/// The bindings that work in `context`, most useful first (the footer shows those with a
/// `short` word, as many as fit).
pub fn bindings(context: Context) -> &'static [Binding] {
    match context {
        Context::Confirm => list![
            b("y/Enter", "confirm", "Do what the dialog names"),
            b("n/Esc", "cancel", "Close the dialog; nothing happens"),
        ],
        Context::Help => list![b("?/q/Esc", "close", "Close this help")],
        Context::LoginForm => list![
            b("Enter", "log in", "Log in with this user and password"),
            b(
                "Tab/↑↓",
                "field",
                "Move between User, Password, Logged in and Pending approvals"
            ),
            b("Ctrl-U", "clear", "Clear the field"),
            b(
                "Esc",
                "leave",
                "Leave the form: to Status when someone is logged in, else quit"
            ),
            F1_HELP,
            QUIT_NOW,
        ],
        Context::SessionUsers => list![
            b("↑↓/jk", "move", "Select a logged-in user"),
            b("x", "log out", "Log the selected user out of this console"),
            b(
                "p",
                "password",
                "Change the selected user's password: current, new, new again (masked)"
            ),
            b(
                "Tab",
                "pane",
                "To Pending approvals, then back to the login form"
            ),
            TABS,
            HELP,
            BACK_TOP,
            QUIT_NOW,
        ],
        Context::SessionPending => list![
            b("↑↓/jk", "move", "Select a pending request"),
            b(
                "Enter",
                "approve",
                "Approve it (asks first); it then runs once, in both names"
            ),
            b("r", "refresh", "Ask for the pending requests again"),
            b("Tab", "pane", "Back to the login form"),
            TABS,
            HELP,
            BACK_TOP,
            QUIT_NOW,
        ],
        Context::Status => list![
            b("r", "refresh", "Ask the daemon for its status again"),
            b(
                "d",
                "designated",
                "Make this appliance the scheduled rotator, or stop it (setting rotation.designated; asks first)"
            ),
            TABS,
            HELP,
            BACK_TOP,
            QUIT_NOW,
        ],
        Context::Jobs => list![
            b("↑↓/jk", "move", "Select a job (PgUp/PgDn, g/G: first/last)"),
            b("Enter", "log", "Open the job's log (live while it runs)"),
            b(
                "y",
                "retry",
                "Retry a failed job from the step that failed (asks first)"
            ),
            b(
                "/",
                "filter",
                "Show only jobs whose id, kind, target, state or step match"
            ),
            b("r", "refresh", "Ask for the job list again"),
            TABS,
            HELP,
            BACK_TOP,
            QUIT_NOW,
        ],
        Context::JobsFilter => list![
            b("Enter", "keep", "Keep the filter and go back to the list"),
            b("Esc", "clear", "Clear the filter"),
            b("Ctrl-U", "erase", "Erase the filter text"),
            F1_HELP,
            QUIT_NOW,
        ],
        Context::Users => list![
            b(
                "↑↓/jk",
                "move",
                "Select an account (PgUp/PgDn, g/G: first/last)"
            ),
            b(
                "a",
                "add",
                "Add a user: name and role; the one-time password is shown once"
            ),
            b("l", "lock", "Lock the selected account (asks first)"),
            b(
                "u",
                "unlock",
                "Unlock the selected account, clearing a failed-login lock"
            ),
            b(
                "R",
                "reset",
                "New one-time password for the selected account, shown once"
            ),
            b("D", "remove", "Remove the selected account (asks first)"),
            b("r", "refresh", "Ask for the accounts again"),
            TABS,
            HELP,
            BACK_TOP,
            QUIT_NOW,
        ],
        Context::Credentials => list![
            b(
                "↑↓/jk",
                "move",
                "Select a credential (PgUp/PgDn, g/G: first/last)"
            ),
            b(
                "i",
                "import",
                "Import from an AWS CSV file: name and a path on the appliance"
            ),
            b(
                "a",
                "add",
                "Add by hand: name, access key id, secret access key (masked)"
            ),
            b(
                "D",
                "remove",
                "Remove the selected credential (asks first; refused while groups use it)"
            ),
            b("r", "refresh", "Ask for the credentials again"),
            TABS,
            HELP,
            BACK_TOP,
            QUIT_NOW,
        ],
        Context::Audit => list![
            b(
                "↑↓/jk",
                "move",
                "Select a record (PgUp/PgDn by ten; older pages load at the top)"
            ),
            b(
                "Enter",
                "details",
                "Show the record: actors, channel, outcome, details, hash"
            ),
            b(
                "/",
                "filter",
                "Show only records whose actor, action, target or time match"
            ),
            b(
                "v",
                "verify",
                "Ask the daemon to verify the whole hash chain"
            ),
            b("r", "refresh", "Ask for records newer than the last shown"),
            b("g/G", "", "Oldest fetched / newest (G follows new records)"),
            TABS,
            HELP,
            BACK_TOP,
            QUIT_NOW,
        ],
        Context::Keys => list![
            b(
                "↑↓/jk",
                "move",
                "Select a group or key (PgUp/PgDn, g/G: first/last)"
            ),
            b(
                "Enter/m",
                "actions",
                "The actions for the selected group or key, in a menu"
            ),
            b(
                "t",
                "test",
                "Test the group's connection to AWS: Connected or not, and each check"
            ),
            b(
                "R",
                "rotate",
                "Force-rotate the group (asks first); a job, its log one key away"
            ),
            b(
                "s",
                "sync",
                "Synchronise the selected key with AWS: choose what, then confirm"
            ),
            b(
                "D",
                "remove",
                "Remove the selected group (asks first; refused while it holds keys)"
            ),
            b(
                "n",
                "new",
                "A new key group: the editor, two tabs (Group, AWS properties)"
            ),
            b(
                "e",
                "edit",
                "Edit the selected group; only the changed fields are sent"
            ),
            b(
                "←→/Space",
                "fold",
                "Fold or unfold the selected group (h/l too)"
            ),
            b(
                "/",
                "filter",
                "Show only groups and keys whose name, key id, AWS key id or alias match"
            ),
            b("r", "refresh", "Ask for the groups and keys again"),
            TABS,
            HELP,
            BACK_TOP,
            QUIT_NOW,
        ],
        Context::KeysFilter => list![
            b("Enter", "keep", "Keep the filter and go back to the tree"),
            b("Esc", "clear", "Clear the filter"),
            b("Ctrl-U", "erase", "Erase the filter text"),
            F1_HELP,
            QUIT_NOW,
        ],
        Context::AuditFilter => list![
            b("Enter", "keep", "Keep the filter and go back to the trail"),
            b("Esc", "clear", "Clear the filter"),
            b("Ctrl-U", "erase", "Erase the filter text"),
            F1_HELP,
            QUIT_NOW,
        ],
        Context::Menu => list![
            b("↑↓/jk", "move", "Select an action"),
            b("Enter", "do", "Do it (sensitive actions ask first)"),
            b("letter", "", "The action's key does it at once"),
            b("Esc", "close", "Close the menu"),
        ],
        Context::Info => list![
            b("Enter/Esc", "close", "Close this dialog"),
            b("↑↓/jk", "scroll", "Scroll when it does not fit"),
        ],
        Context::Form => list![
            b(
                "Enter",
                "next/send",
                "Next field; on the last field, send (asks first)"
            ),
            b(
                "Tab/↑↓",
                "field",
                "Move between the fields; with tabs, Tab/Shift-Tab switch tabs (←→ on the tab line)"
            ),
            b(
                "←→/Space",
                "choose",
                "Change a choice (a letter picks the first match)"
            ),
            b(
                "Esc",
                "cancel",
                "Close the form; nothing is sent, secrets are wiped"
            ),
            b("Ctrl-U", "clear", "Clear the field"),
            F1_HELP,
            QUIT_NOW,
        ],
        Context::Reveal => list![b(
            "Enter/Esc",
            "close",
            "Close; the secret is wiped and cannot be shown again"
        )],
        Context::JobLog => list![
            b(
                "↑↓/jk",
                "scroll",
                "Scroll the log (PgUp/PgDn; G follows the end)"
            ),
            b("r", "refresh", "Ask for new lines now"),
            b("q/Esc", "back", "Back to the job list"),
            HELP,
            QUIT_NOW,
        ],
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }
    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    #[test]
    fn ctrl_c_quits_everywhere() {
        for context in ALL {
            assert_eq!(map(context, ctrl('c')), Some(Action::Quit), "{context:?}");
        }
    }

    #[test]
    fn letters_are_text_in_fields_and_commands_elsewhere() {
        for c in ['q', 'j', 'k', 'x', '/', '?', '1', 'r'] {
            assert_eq!(
                map(Context::LoginForm, key(KeyCode::Char(c))),
                Some(Action::Input(c))
            );
            assert_eq!(
                map(Context::JobsFilter, key(KeyCode::Char(c))),
                Some(Action::Input(c))
            );
        }
        assert_eq!(
            map(Context::Jobs, key(KeyCode::Char('q'))),
            Some(Action::Back)
        );
        assert_eq!(
            map(Context::Jobs, key(KeyCode::Char('j'))),
            Some(Action::Down)
        );
        assert_eq!(
            map(Context::Jobs, key(KeyCode::Char('k'))),
            Some(Action::Up)
        );
        assert_eq!(
            map(Context::Jobs, key(KeyCode::Char('/'))),
            Some(Action::Filter)
        );
        assert_eq!(
            map(Context::Status, key(KeyCode::Char('2'))),
            Some(Action::Goto(2))
        );
        assert_eq!(map(Context::LoginForm, ctrl('u')), Some(Action::ClearInput));
    }

    #[test]
    fn the_screen_keys_of_the_issue() {
        for context in [
            Context::SessionUsers,
            Context::Status,
            Context::Jobs,
            Context::JobLog,
        ] {
            assert_eq!(map(context, key(KeyCode::Char('?'))), Some(Action::Help));
            assert_eq!(map(context, key(KeyCode::Esc)), Some(Action::Back));
            assert_eq!(map(context, key(KeyCode::Tab)), Some(Action::NextPane));
            assert_eq!(map(context, key(KeyCode::Up)), Some(Action::Up));
            assert_eq!(map(context, key(KeyCode::Down)), Some(Action::Down));
            assert_eq!(map(context, key(KeyCode::Enter)), Some(Action::Open));
        }
        // `/` filters only where there is something to filter; `x` logs out only on users.
        assert_eq!(map(Context::Status, key(KeyCode::Char('/'))), None);
        assert_eq!(map(Context::Jobs, key(KeyCode::Char('x'))), None);
        assert_eq!(
            map(Context::SessionUsers, key(KeyCode::Char('x'))),
            Some(Action::Logout)
        );
        // `p` changes a password on the logged-in users pane; in the login form it is a letter.
        assert_eq!(
            map(Context::SessionUsers, key(KeyCode::Char('p'))),
            Some(Action::Passwd)
        );
        assert_eq!(
            map(Context::LoginForm, key(KeyCode::Char('p'))),
            Some(Action::Input('p'))
        );
    }

    #[test]
    fn help_and_confirm_take_only_their_keys() {
        assert_eq!(
            map(Context::Help, key(KeyCode::Char('?'))),
            Some(Action::Back)
        );
        assert_eq!(map(Context::Help, key(KeyCode::Esc)), Some(Action::Back));
        assert_eq!(map(Context::Help, key(KeyCode::Char('j'))), None);
        assert_eq!(
            map(Context::Confirm, key(KeyCode::Char('y'))),
            Some(Action::Confirm)
        );
        assert_eq!(
            map(Context::Confirm, key(KeyCode::Enter)),
            Some(Action::Confirm)
        );
        assert_eq!(
            map(Context::Confirm, key(KeyCode::Esc)),
            Some(Action::Cancel)
        );
        assert_eq!(map(Context::Confirm, key(KeyCode::Char('x'))), None);
        assert_eq!(
            map(Context::LoginForm, key(KeyCode::F(1))),
            Some(Action::Help)
        );
    }

    #[test]
    fn the_users_keys() {
        let users = |c| map(Context::Users, key(KeyCode::Char(c)));
        assert_eq!(users('a'), Some(Action::Add));
        assert_eq!(users('l'), Some(Action::Lock));
        assert_eq!(users('u'), Some(Action::Unlock));
        assert_eq!(users('R'), Some(Action::Reset));
        assert_eq!(users('D'), Some(Action::Remove));
        assert_eq!(users('r'), Some(Action::Refresh), "lower-case r refreshes");
        assert_eq!(users('d'), None, "removing needs the capital D");
        // Elsewhere these letters do nothing.
        assert_eq!(map(Context::Jobs, key(KeyCode::Char('D'))), None);
        assert_eq!(map(Context::Status, key(KeyCode::Char('l'))), None);
    }

    #[test]
    fn forms_take_text_and_choices_and_the_reveal_only_closes() {
        for c in ['a', 'l', 'D', 'q', '1', ' '] {
            assert_eq!(
                map(Context::Form, key(KeyCode::Char(c))),
                Some(Action::Input(c))
            );
        }
        assert_eq!(map(Context::Form, key(KeyCode::Left)), Some(Action::Left));
        assert_eq!(map(Context::Form, key(KeyCode::Right)), Some(Action::Right));
        assert_eq!(map(Context::Form, key(KeyCode::Esc)), Some(Action::Back));
        assert_eq!(map(Context::Form, key(KeyCode::Enter)), Some(Action::Open));
        assert_eq!(
            map(Context::Reveal, key(KeyCode::Enter)),
            Some(Action::Back)
        );
        assert_eq!(map(Context::Reveal, key(KeyCode::Esc)), Some(Action::Back));
        assert_eq!(map(Context::Reveal, key(KeyCode::Char('j'))), None);
        assert_eq!(map(Context::Reveal, key(KeyCode::Char('?'))), None);
    }

    #[test]
    fn the_pending_pane_approves_with_enter() {
        let pending = |code| map(Context::SessionPending, key(code));
        assert_eq!(pending(KeyCode::Enter), Some(Action::Open));
        assert_eq!(pending(KeyCode::Char('r')), Some(Action::Refresh));
        assert_eq!(pending(KeyCode::Tab), Some(Action::NextPane));
        assert_eq!(
            pending(KeyCode::Char('x')),
            None,
            "x logs out only in Logged in"
        );
    }

    #[test]
    fn the_credentials_keys() {
        let credentials = |c| map(Context::Credentials, key(KeyCode::Char(c)));
        assert_eq!(credentials('i'), Some(Action::Import));
        assert_eq!(credentials('a'), Some(Action::Add));
        assert_eq!(credentials('D'), Some(Action::Remove));
        assert_eq!(credentials('r'), Some(Action::Refresh));
        assert_eq!(credentials('d'), None, "removing needs the capital D");
        assert_eq!(credentials('l'), None, "credentials are not locked");
        assert_eq!(credentials('5'), Some(Action::Goto(5)));
        assert_eq!(
            map(Context::Credentials, key(KeyCode::Enter)),
            Some(Action::Open)
        );
        assert_eq!(map(Context::Users, key(KeyCode::Char('i'))), None);
        // In the form the same letters are text.
        assert_eq!(
            map(Context::Form, key(KeyCode::Char('i'))),
            Some(Action::Input('i'))
        );
    }

    #[test]
    fn the_audit_keys() {
        let audit = |code| map(Context::Audit, key(code));
        assert_eq!(audit(KeyCode::Char('v')), Some(Action::Verify));
        assert_eq!(audit(KeyCode::Char('/')), Some(Action::Filter));
        assert_eq!(audit(KeyCode::Enter), Some(Action::Open));
        assert_eq!(audit(KeyCode::PageUp), Some(Action::PageUp));
        assert_eq!(audit(KeyCode::PageDown), Some(Action::PageDown));
        assert_eq!(audit(KeyCode::Char('G')), Some(Action::Bottom));
        assert_eq!(audit(KeyCode::Char('r')), Some(Action::Refresh));
        assert_eq!(audit(KeyCode::Char('6')), Some(Action::Goto(6)));
        assert_eq!(
            audit(KeyCode::Char('D')),
            None,
            "the trail cannot be edited"
        );
        assert_eq!(map(Context::Jobs, key(KeyCode::Char('v'))), None);
        // The filter takes letters as text.
        for c in ['v', 'q', '/', 'a'] {
            assert_eq!(
                map(Context::AuditFilter, key(KeyCode::Char(c))),
                Some(Action::Input(c))
            );
        }
        assert_eq!(
            map(Context::AuditFilter, key(KeyCode::Esc)),
            Some(Action::Back)
        );
        // The details dialog scrolls and closes, nothing else.
        let info = |code| map(Context::Info, key(code));
        assert_eq!(info(KeyCode::Enter), Some(Action::Back));
        assert_eq!(info(KeyCode::Esc), Some(Action::Back));
        assert_eq!(info(KeyCode::Char('j')), Some(Action::Down));
        assert_eq!(info(KeyCode::Char('v')), None);
        assert_eq!(info(KeyCode::Char('2')), None);
    }

    #[test]
    fn the_key_database_keys() {
        let keys = |code| map(Context::Keys, key(code));
        assert_eq!(keys(KeyCode::Char('/')), Some(Action::Filter));
        assert_eq!(keys(KeyCode::Left), Some(Action::Left));
        assert_eq!(keys(KeyCode::Char('h')), Some(Action::Left));
        assert_eq!(keys(KeyCode::Char('l')), Some(Action::Right));
        assert_eq!(keys(KeyCode::Char(' ')), Some(Action::Toggle));
        assert_eq!(keys(KeyCode::Char('7')), Some(Action::Goto(7)));
        assert_eq!(keys(KeyCode::Char('t')), Some(Action::Test));
        assert_eq!(keys(KeyCode::Char('R')), Some(Action::Rotate));
        assert_eq!(keys(KeyCode::Char('s')), Some(Action::Sync));
        assert_eq!(keys(KeyCode::Char('D')), Some(Action::Remove));
        assert_eq!(keys(KeyCode::Char('m')), Some(Action::Menu));
        assert_eq!(keys(KeyCode::Enter), Some(Action::Open));
        assert_eq!(
            map(Context::Users, key(KeyCode::Char('R'))),
            Some(Action::Reset)
        );
        assert_eq!(
            map(Context::Jobs, key(KeyCode::Char('y'))),
            Some(Action::Retry)
        );
        assert_eq!(map(Context::Audit, key(KeyCode::Char('y'))), None);
        let menu = |code| map(Context::Menu, key(code));
        assert_eq!(menu(KeyCode::Enter), Some(Action::Open));
        assert_eq!(menu(KeyCode::Esc), Some(Action::Back));
        assert_eq!(menu(KeyCode::Char('j')), Some(Action::Down));
        assert_eq!(menu(KeyCode::Char('R')), Some(Action::Input('R')));
        assert_eq!(map(Context::Users, key(KeyCode::Char(' '))), None);
        assert_eq!(map(Context::Jobs, key(KeyCode::Left)), None);
        for c in ['h', 'l', ' ', 'q', '7'] {
            assert_eq!(
                map(Context::KeysFilter, key(KeyCode::Char(c))),
                Some(Action::Input(c))
            );
        }
    }

    #[test]
    fn the_group_editor_keys() {
        let keys = |code| map(Context::Keys, key(code));
        assert_eq!(keys(KeyCode::Char('n')), Some(Action::Add));
        assert_eq!(keys(KeyCode::Char('e')), Some(Action::Edit));
        assert_eq!(map(Context::Users, key(KeyCode::Char('e'))), None);
        assert_eq!(
            map(Context::Status, key(KeyCode::Char('d'))),
            Some(Action::Designate)
        );
        assert_eq!(map(Context::Jobs, key(KeyCode::Char('d'))), None);
        assert_eq!(map(Context::Jobs, key(KeyCode::Char('n'))), None);
        // In the editor (a form) letters are text; Tab and Shift-Tab switch tabs, ←→ choose.
        let form = |code| map(Context::Form, key(code));
        for c in ['n', 'e', 'q', '/'] {
            assert_eq!(form(KeyCode::Char(c)), Some(Action::Input(c)));
        }
        assert_eq!(form(KeyCode::Tab), Some(Action::NextPane));
        assert_eq!(form(KeyCode::BackTab), Some(Action::PrevPane));
        assert_eq!(form(KeyCode::Left), Some(Action::Left));
        assert_eq!(form(KeyCode::Up), Some(Action::Up));
    }

    #[test]
    fn the_screens_binding_counts_the_tabs() {
        let n = crate::app::TABS.len();
        assert_eq!(TABS.keys, format!("1-{n}"));
        for (_, name, _) in crate::app::TABS.iter().skip(1) {
            assert!(TABS.long.contains(name), "{name}");
        }
    }

    #[test]
    fn the_login_help_names_the_pending_pane() {
        assert!(
            bindings(Context::LoginForm)
                .iter()
                .any(|b| b.long.contains("Pending approvals"))
        );
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(map(Context::Jobs, release), None);
    }

    pub(crate) const ALL: [Context; 19] = [
        Context::Menu,
        Context::Keys,
        Context::KeysFilter,
        Context::Audit,
        Context::AuditFilter,
        Context::Info,
        Context::Credentials,
        Context::SessionPending,
        Context::Users,
        Context::Form,
        Context::Reveal,
        Context::Confirm,
        Context::Help,
        Context::LoginForm,
        Context::SessionUsers,
        Context::Status,
        Context::Jobs,
        Context::JobsFilter,
        Context::JobLog,
    ];

    #[test]
    fn every_context_documents_help_or_closing_and_ctrl_c() {
        for context in ALL {
            let keys: Vec<_> = bindings(context).iter().map(|b| b.keys).collect();
            assert!(!keys.is_empty(), "{context:?}");
            if !matches!(
                context,
                Context::Confirm | Context::Help | Context::Reveal | Context::Info | Context::Menu
            ) {
                assert!(keys.contains(&"Ctrl-C"), "{context:?}");
            }
        }
    }
}
