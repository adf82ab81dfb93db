//! The screens, one component each (gitui's `Component`): a screen owns its state, its keymaps
//! (the keys, what they do and their help, in one table), what its actions send, how it reads
//! the daemon's answers, and its drawing, all in its own module with its tests. The App knows
//! them only through [`Screen`]; adding a screen is its module, its `mod` line and its line in
//! [`all`].

use std::any::{Any, TypeId};

use keyward_proto::{ApiError, Op, Reply};
use ratatui::Frame;
use ratatui::layout::Rect;

use crate::app::{Purpose, Shell};
use crate::input::Form;
use crate::keys::{Action, Keymap};
use crate::theme::Theme;

/// A tab's name, and the short form the tab strip uses when the full names do not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tab {
    pub name: &'static str,
    pub short: &'static str,
}

/// A screen of the console. Every method but the first three has a default (most do nothing),
/// so a screen says only what it does.
pub trait Screen: Any {
    fn tab(&self) -> Tab;
    /// Where the keyboard is on this screen now (which pane, typing a filter or not).
    fn keymap(&self) -> &'static Keymap;
    /// Draws the screen (a pure function of its state and the shell's).
    fn draw(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect);

    /// Every keymap [`Screen::keymap`] may give (for the tests that hold them all to rules).
    fn keymaps(&self) -> Vec<&'static Keymap> {
        vec![self.keymap()]
    }
    /// Whether it needs someone logged in (the one that does not is where the console starts).
    fn needs_login(&self) -> bool {
        true
    }
    /// Its tab key was pressed: ask for what it shows.
    fn shown(&mut self, shell: &mut Shell) {
        self.refresh(shell);
    }
    /// `r`: ask again.
    fn refresh(&mut self, _shell: &mut Shell) {}
    /// An action from its keymap, or from a menu it opened.
    fn on_action(&mut self, _action: Action, _shell: &mut Shell) {}
    /// Esc or q with no dialog open: true when the screen took it (closed a filter, went
    /// back); otherwise the console offers to quit.
    fn back(&mut self, _shell: &mut Shell) -> bool {
        false
    }
    /// About once a second while it is on show, someone is logged in, the link is up and the
    /// keyboard was touched lately.
    fn tick(&mut self, _shell: &mut Shell) {}
    /// Every answer from the daemon, whichever screen asked: a screen takes what it shows.
    fn on_reply(&mut self, _purpose: Purpose, _reply: &Reply, _shell: &mut Shell) {}
    /// Every refusal: true when the screen showed it itself, instead of the error line.
    fn on_refused(&mut self, _purpose: Purpose, _error: &ApiError, _shell: &mut Shell) -> bool {
        false
    }
    /// A form it opened was filled in.
    fn submit(&mut self, _form: &mut Form, _shell: &mut Shell) {}
    /// Show item `item` (a job another screen started, by its id).
    fn show_item(&mut self, _item: u64, _shell: &mut Shell) {}
    /// Nobody is logged in any more: forget what only a logged-in user may see.
    fn logged_out(&mut self) {}
}

/// Names a screen (to show it, or give it a dialog's answer), by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenId(TypeId);

impl ScreenId {
    pub fn of<S: Screen>() -> Self {
        Self(TypeId::of::<S>())
    }
    pub fn of_screen(screen: &dyn Screen) -> Self {
        Self((screen as &dyn Any).type_id())
    }
}

pub mod audit;
pub mod credentials;
pub mod jobs;
pub mod keydb;
pub mod session;
pub mod status;
pub mod users;

/// Every screen, in tab order (the digit keys pick them): a screen is registered by its line
/// here (and its `mod` above, kept out of a macro so that rustfmt sees the module).
pub fn all() -> Vec<Box<dyn Screen>> {
    vec![
        Box::new(session::Session::default()),
        Box::new(status::Status::default()),
        Box::new(jobs::Jobs::default()),
        Box::new(users::Users::default()),
        Box::new(credentials::Credentials::default()),
        Box::new(audit::Audit::default()),
        Box::new(keydb::KeyDb::default()),
    ]
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

/// A list the daemon sent, and the row selected in it.
#[derive(Debug)]
pub struct List<T> {
    pub items: Vec<T>,
    /// An answer arrived (an empty list is then "none", not "not asked yet").
    pub loaded: bool,
    pub selected: usize,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            loaded: false,
            selected: 0,
        }
    }
}

impl<T> List<T> {
    /// What the pane says while the list is empty: `asking` while `op` is on its way, `none`
    /// once the daemon sent an empty list, `not_yet` before anyone asked.
    pub fn empty_text<'a>(
        &self,
        shell: &Shell,
        op: Op,
        [asking, none, not_yet]: [&'a str; 3],
    ) -> &'a str {
        if shell.awaiting(Purpose::new(op)) {
            asking
        } else if self.loaded {
            none
        } else {
            not_yet
        }
    }
}

impl<T: Clone> List<T> {
    /// The daemon's list, the selection kept on the same row as far as it still exists.
    pub fn arrived(&mut self, items: &[T]) {
        self.items = items.to_vec();
        self.loaded = true;
        self.selected = self.selected.min(self.items.len().saturating_sub(1));
    }

    pub fn selected(&self) -> Option<&T> {
        self.items.get(self.selected)
    }

    /// Moves the selection for a movement action; false for any other action.
    pub fn moved(&mut self, action: Action) -> bool {
        move_selection(&mut self.selected, self.items.len(), action)
    }
}

/// A list's filter, typed after `/`.
#[derive(Debug, Default)]
pub struct Filter {
    pub text: String,
    /// Keys go to the filter text.
    pub typing: bool,
}

impl Filter {
    /// A key while typing: edits the text; Enter keeps it and goes back to the list.
    pub fn typed(&mut self, action: Action) {
        match action {
            Action::Input(c) => self.text.push(c),
            Action::Backspace => {
                self.text.pop();
            }
            Action::ClearInput => self.text.clear(),
            Action::Open => self.typing = false,
            _ => {}
        }
    }

    /// Esc while typing: no filter.
    pub fn clear(&mut self) {
        self.text.clear();
        self.typing = false;
    }

    /// A list screen's key: while typing, the filter takes it (true); else the list does.
    pub fn took(&mut self, action: Action) -> bool {
        let typing = self.typing;
        if typing {
            self.typed(action);
        }
        typing
    }

    /// A key on a filtered list of `len` rows: while typing, the filter takes it and the
    /// selection goes back to the first row; otherwise a movement moves the selection. True
    /// when either took it.
    pub fn took_or_moved(&mut self, action: Action, selected: &mut usize, len: usize) -> bool {
        if self.took(action) {
            *selected = 0;
            return true;
        }
        move_selection(selected, len, action)
    }

    /// Esc or q on a list screen: while typing, clears the filter (true).
    pub fn closed(&mut self) -> bool {
        let typing = self.typing;
        if typing {
            self.clear();
        }
        typing
    }

    /// Whether `text` contains the filter, in any case (everything does when it is empty).
    pub fn hit(&self, text: &str) -> bool {
        text.to_lowercase().contains(&self.text.to_lowercase())
    }
}
