//! The dialogs drawn over a screen (a confirm, a context menu, a read-only dialog, a one-time
//! password shown once, the help, a form), and the keys that work while one is open.

use crossterm::event::KeyCode;
use keyward_proto::{Password, Request};

use super::Purpose;
use crate::keys::{
    Action, Bind, Binding, CLEAR, ENTER, ESC, ESC_BACK, Keymap, MOVE, b, ch, key, unlisted,
};
use crate::screens::{ScreenId, move_selection};

/// What a confirm dialog would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmable {
    Quit,
    /// Send this request (a sensitive operation the dialog has named).
    Send {
        purpose: Purpose,
        request: Request,
    },
    /// Show this item on its screen (a job the console just started, on Jobs).
    Show {
        screen: ScreenId,
        item: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub title: String,
    /// The effect, in words.
    pub effect: String,
    pub then: Confirmable,
}

/// A context menu: the actions available for the selected row, each with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    pub title: String,
    /// (key, what it does, the action it stands for).
    pub items: Vec<(char, String, Action)>,
    pub selected: usize,
}

impl Menu {
    /// Moves the selection, or picks an item: by Enter, or by its key.
    pub(super) fn pick(&mut self, action: Action) -> Option<Action> {
        if move_selection(&mut self.selected, self.items.len(), action) {
            return None;
        }
        match action {
            Action::Open => self.items.get(self.selected).map(|item| item.2),
            Action::Input(c) => self
                .items
                .iter()
                .find(|(key, _, _)| *key == c)
                .map(|item| item.2),
            _ => None,
        }
    }
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

impl Info {
    pub(super) fn scroll_by(&mut self, action: Action) {
        let last = u16::try_from(self.lines.len().saturating_sub(1)).unwrap_or(u16::MAX);
        self.scroll = match action {
            Action::Up => self.scroll.saturating_sub(1),
            Action::Down => self.scroll.saturating_add(1).min(last),
            Action::Top => 0,
            _ => self.scroll,
        };
    }
}

/// A secret the daemon gave out to be shown once (a one-time password). Dropping it wipes it.
#[derive(Debug)]
pub struct Reveal {
    pub title: String,
    pub intro: String,
    pub secret: Password,
    pub outro: String,
}

pub const CONFIRM: Keymap = Keymap::dialog(
    "confirm",
    &[
        b(
            &[
                &[ch('y', Action::Confirm)],
                &[key(KeyCode::Enter, Action::Confirm)],
            ],
            "confirm",
            "Do what the dialog names",
        ),
        b(
            &[
                &[ch('n', Action::Cancel)],
                &[key(KeyCode::Esc, Action::Cancel)],
            ],
            "cancel",
            "Close the dialog; nothing happens",
        ),
        unlisted(&[&[
            ch('Y', Action::Confirm),
            ch('N', Action::Cancel),
            ch('q', Action::Cancel),
        ]]),
    ],
);

pub const HELP: Keymap = Keymap::dialog(
    "help",
    &[
        b(
            &[&[ch('?', Action::Back)], &[ch('q', Action::Back)], ESC_BACK],
            "close",
            "Close this help",
        ),
        unlisted(&[&[key(KeyCode::F(1), Action::Back)]]),
    ],
);

pub const MENU: Keymap = Keymap::dialog(
    "menu",
    &[
        b(MOVE, "move", "Select an action"),
        b(ENTER, "do", "Do it (sensitive actions ask first)"),
        Binding {
            keys: &[&[Bind::Letter]],
            short: "",
            help: crate::keys::Help::Says("The action's key does it at once"),
        },
        b(ESC, "close", "Close the menu"),
        unlisted(&[&[ch('q', Action::Back)]]),
    ],
);

/// Enter or Esc (q too) closes.
const CLOSE: &[&[Bind]] = &[&[key(KeyCode::Enter, Action::Back)], ESC_BACK];

pub const INFO: Keymap = Keymap::dialog(
    "info",
    &[
        b(CLOSE, "close", "Close this dialog"),
        b(MOVE, "scroll", "Scroll when it does not fit"),
        unlisted(&[&[
            ch('q', Action::Back),
            key(KeyCode::Home, Action::Top),
            ch('g', Action::Top),
        ]]),
    ],
);

pub const FORM: Keymap = Keymap::typing(
    "form",
    "Form",
    &[
        b(
            ENTER,
            "next/send",
            "Next field; on the last field, send (asks first)",
        ),
        b(
            &[
                &[key(KeyCode::Tab, Action::NextPane)],
                &[
                    key(KeyCode::Up, Action::Up),
                    key(KeyCode::Down, Action::Down),
                ],
            ],
            "field",
            "Move between the fields; with tabs, Tab/Shift-Tab switch tabs (←→ on the tab line)",
        ),
        b(
            &[
                &[
                    key(KeyCode::Left, Action::Left),
                    key(KeyCode::Right, Action::Right),
                ],
                &[Bind::Typed(' ')],
            ],
            "choose",
            "Change a choice (a letter picks the first match)",
        ),
        b(
            ESC,
            "cancel",
            "Close the form; nothing is sent, secrets are wiped",
        ),
        b(CLEAR, "clear", "Clear the field"),
    ],
);

pub const REVEAL: Keymap = Keymap::dialog(
    "reveal",
    &[
        b(
            CLOSE,
            "close",
            "Close; the secret is wiped and cannot be shown again",
        ),
        unlisted(&[&[ch('q', Action::Back)]]),
    ],
);

/// The dialogs' keymaps; a form's is the only one with a way to the help (the others close
/// on their own keys).
pub const KEYMAPS: [&Keymap; 6] = [&CONFIRM, &HELP, &MENU, &INFO, &FORM, &REVEAL];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::press;

    #[test]
    fn help_and_confirm_take_only_their_keys() {
        assert_eq!(HELP.action(press(KeyCode::Char('?'))), Some(Action::Back));
        assert_eq!(HELP.action(press(KeyCode::Esc)), Some(Action::Back));
        assert_eq!(HELP.action(press(KeyCode::F(1))), Some(Action::Back));
        assert_eq!(HELP.action(press(KeyCode::Char('j'))), None);
        for (code, action) in [
            (KeyCode::Char('y'), Some(Action::Confirm)),
            (KeyCode::Char('Y'), Some(Action::Confirm)),
            (KeyCode::Enter, Some(Action::Confirm)),
            (KeyCode::Esc, Some(Action::Cancel)),
            (KeyCode::Char('n'), Some(Action::Cancel)),
            (KeyCode::Char('q'), Some(Action::Cancel)),
            (KeyCode::Char('x'), None),
        ] {
            assert_eq!(CONFIRM.action(press(code)), action, "{code:?}");
        }
    }

    #[test]
    fn forms_take_text_and_choices_and_the_reveal_only_closes() {
        for c in ['a', 'l', 'D', 'q', '1', ' ', 'n', 'e', '/'] {
            assert_eq!(FORM.action(press(KeyCode::Char(c))), Some(Action::Input(c)));
        }
        for (code, action) in [
            (KeyCode::Left, Action::Left),
            (KeyCode::Right, Action::Right),
            (KeyCode::Up, Action::Up),
            (KeyCode::Esc, Action::Back),
            (KeyCode::Enter, Action::Open),
            (KeyCode::Tab, Action::NextPane),
            (KeyCode::BackTab, Action::PrevPane),
        ] {
            assert_eq!(FORM.action(press(code)), Some(action), "{code:?}");
        }
        assert_eq!(REVEAL.action(press(KeyCode::Enter)), Some(Action::Back));
        assert_eq!(REVEAL.action(press(KeyCode::Esc)), Some(Action::Back));
        assert_eq!(REVEAL.action(press(KeyCode::Char('j'))), None);
        assert_eq!(REVEAL.action(press(KeyCode::Char('?'))), None);
    }

    #[test]
    fn the_details_dialog_scrolls_and_closes_and_the_menu_takes_letters() {
        let info = |code| INFO.action(press(code));
        assert_eq!(info(KeyCode::Enter), Some(Action::Back));
        assert_eq!(info(KeyCode::Esc), Some(Action::Back));
        assert_eq!(info(KeyCode::Char('j')), Some(Action::Down));
        assert_eq!(info(KeyCode::Char('v')), None);
        assert_eq!(info(KeyCode::Char('2')), None);
        let menu = |code| MENU.action(press(code));
        assert_eq!(menu(KeyCode::Enter), Some(Action::Open));
        assert_eq!(menu(KeyCode::Esc), Some(Action::Back));
        assert_eq!(menu(KeyCode::Char('j')), Some(Action::Down));
        assert_eq!(menu(KeyCode::Char('R')), Some(Action::Input('R')));
    }
}
