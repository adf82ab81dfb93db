//! Keys to actions. Each place the keyboard can be (a screen's pane, a filter, a dialog) has one
//! [`Keymap`]: its [`Binding`]s, each the keys it takes and the [`Action`] each does, with the
//! word the footer shows and the sentence `?` shows. The key map, the footer and the help all
//! read that one table, and a hint is drawn from the bound key itself, so they cannot disagree.
//! The screens' keymaps live with the screens (`crate::screens`), the dialogs' in
//! `crate::app::dialogs`; the pieces every screen shares are here.

use std::borrow::Cow;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

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

/// A key a binding takes, and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// This key, whatever the modifiers (crossterm reports `G` with Shift), does this.
    Key(KeyCode, Action),
    /// Ctrl and this letter.
    Ctrl(char, Action),
    /// This character typed as text (without Ctrl or Alt): where letters are text, a key
    /// that also does something (Space changes a choice in a form).
    Typed(char),
    /// 1 to 9: go to the tab of that number.
    Tabs,
    /// Any character typed without Ctrl or Alt: text.
    Text,
    /// Any character typed without Ctrl: the menu item with that key.
    Letter,
}

impl Bind {
    /// Takes every key of a kind (text, digits) rather than one key: looked at last.
    fn is_catch_all(self) -> bool {
        matches!(self, Self::Tabs | Self::Text | Self::Letter)
    }

    fn action(self, key: &KeyEvent) -> Option<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match (self, key.code) {
            (Self::Key(code, action), pressed) if code == pressed => Some(action),
            (Self::Ctrl(c, action), KeyCode::Char(pressed)) if ctrl && c == pressed => Some(action),
            (Self::Typed(c), KeyCode::Char(pressed)) if c == pressed && !ctrl && !alt => {
                Some(Action::Input(c))
            }
            (Self::Tabs, KeyCode::Char(c @ '1'..='9')) => Some(Action::Goto(c as u8 - b'0')),
            (Self::Text, KeyCode::Char(c)) if !ctrl && !alt => Some(Action::Input(c)),
            (Self::Letter, KeyCode::Char(c)) if !ctrl => Some(Action::Input(c)),
            _ => None,
        }
    }

    /// How a hint names the key; `tabs` is how many tabs there are.
    fn label(self, tabs: usize) -> Cow<'static, str> {
        match self {
            Self::Key(code, _) => match code {
                KeyCode::Up => "↑".into(),
                KeyCode::Down => "↓".into(),
                KeyCode::Left => "←".into(),
                KeyCode::Right => "→".into(),
                KeyCode::Enter => "Enter".into(),
                KeyCode::Esc => "Esc".into(),
                KeyCode::Tab => "Tab".into(),
                KeyCode::BackTab => "Shift-Tab".into(),
                KeyCode::PageUp => "PgUp".into(),
                KeyCode::PageDown => "PgDn".into(),
                KeyCode::Home => "Home".into(),
                KeyCode::End => "End".into(),
                KeyCode::Backspace => "Backspace".into(),
                KeyCode::Char(' ') => "Space".into(),
                KeyCode::Char(c) => c.to_string().into(),
                KeyCode::F(n) => format!("F{n}").into(),
                other => format!("{other:?}").into(),
            },
            Self::Ctrl(c, _) => format!("Ctrl-{}", c.to_ascii_uppercase()).into(),
            Self::Typed(c) => Self::Key(KeyCode::Char(c), Action::Input(c)).label(tabs),
            Self::Tabs => format!("1-{tabs}").into(),
            Self::Text => "text".into(),
            Self::Letter => "letter".into(),
        }
    }
}

/// What `?` says about a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Help {
    /// Listed with this sentence.
    Says(&'static str),
    /// Listed as "Go to" and the names of the tabs (the tab keys).
    Tabs,
    /// Works without being listed (another key of a listed binding, a key every screen takes).
    Unlisted,
}

/// One line of help: the keys (in groups: the keys of a group side by side, the groups joined
/// by `/`, as "↑↓/jk"), a word or two for the footer, a sentence for `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub keys: &'static [&'static [Bind]],
    /// The footer's word; empty: not in the footer.
    pub short: &'static str,
    pub help: Help,
}

impl Binding {
    /// The keys as the footer and the help name them.
    pub fn keys_text(&self, tabs: usize) -> String {
        self.keys
            .iter()
            .map(|group| group.iter().map(|k| k.label(tabs)).collect::<String>())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The sentence `?` shows, if the binding is listed; `tabs` are the tabs' names.
    pub fn help_text(&self, tabs: &[&str]) -> Option<Cow<'static, str>> {
        match self.help {
            Help::Says(text) => Some(text.into()),
            Help::Tabs => Some(format!("Go to {}", either_of(tabs)).into()),
            Help::Unlisted => None,
        }
    }

    fn binds(&self) -> impl Iterator<Item = Bind> + '_ {
        self.keys.iter().flat_map(|group| group.iter().copied())
    }
}

/// `a, b or c`.
fn either_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A keymap's bindings.
pub type Bindings = &'static [Binding];

/// Where the keyboard is: the bindings that work there, most useful first (the footer shows
/// those with a word, as many as fit; `?` lists those with a sentence).
#[derive(Debug)]
pub struct Keymap {
    /// Unique among the keymaps (tests compare keymaps by it).
    pub name: &'static str,
    /// The help overlay's title for this place.
    pub title: &'static str,
    /// The bindings of this place, then those it shares with others like it ([`ON_A_SCREEN`],
    /// [`TYPING`]).
    pub bindings: Bindings,
    pub shared: Bindings,
}

impl PartialEq for Keymap {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Keymap {}

/// Keys that work everywhere, after a keymap's own keys and before its catch-alls.
const GLOBAL: [Bind; 2] = [CTRL_C, F1];
const CTRL_C: Bind = Bind::Ctrl('c', Action::Quit);
const F1: Bind = Bind::Key(KeyCode::F(1), Action::Help);

impl Keymap {
    /// A screen pane's keymap: its own bindings, then the keys every screen takes.
    pub const fn screen(name: &'static str, title: &'static str, bindings: Bindings) -> Self {
        Self::sharing(name, title, bindings, ON_A_SCREEN)
    }

    /// A keymap where letters are text (a filter, a form): its own bindings, then [`TYPING`].
    pub const fn typing(name: &'static str, title: &'static str, bindings: Bindings) -> Self {
        Self::sharing(name, title, bindings, TYPING)
    }

    /// A dialog's keymap: no help title, and only its own keys (it closes on them).
    pub const fn dialog(name: &'static str, bindings: Bindings) -> Self {
        Self::sharing(name, "", bindings, &[])
    }

    const fn sharing(
        name: &'static str,
        title: &'static str,
        bindings: Bindings,
        shared: Bindings,
    ) -> Self {
        Self {
            name,
            title,
            bindings,
            shared,
        }
    }

    /// What `key` does here; `None` when it does nothing. A keymap's own keys come first, then
    /// Ctrl-C and F1, then the keymap's catch-alls (text, the tab digits).
    pub fn action(&self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let binds = || self.all().flat_map(Binding::binds);
        binds()
            .filter(|b| !b.is_catch_all())
            .find_map(|b| b.action(&key))
            .or_else(|| GLOBAL.iter().find_map(|b| b.action(&key)))
            .or_else(|| {
                binds()
                    .filter(|b| b.is_catch_all())
                    .find_map(|b| b.action(&key))
            })
    }

    /// Every binding, in order.
    pub fn all(&self) -> impl Iterator<Item = &'static Binding> {
        self.bindings.iter().chain(self.shared)
    }

    /// The bindings the footer shows.
    pub fn footer(&self) -> impl Iterator<Item = &'static Binding> {
        self.all().filter(|b| !b.short.is_empty())
    }
}

/// A `key` binding.
pub const fn key(code: KeyCode, action: Action) -> Bind {
    Bind::Key(code, action)
}

/// A character key's binding.
pub const fn ch(c: char, action: Action) -> Bind {
    Bind::Key(KeyCode::Char(c), action)
}

/// A listed binding.
pub const fn b(
    keys: &'static [&'static [Bind]],
    short: &'static str,
    long: &'static str,
) -> Binding {
    Binding {
        keys,
        short,
        help: Help::Says(long),
    }
}

/// Keys that work without being listed.
pub const fn unlisted(keys: &'static [&'static [Bind]]) -> Binding {
    Binding {
        keys,
        short: "",
        help: Help::Unlisted,
    }
}

/// ↑↓ and j/k: move the selection.
pub const MOVE: &[&[Bind]] = &[
    &[
        key(KeyCode::Up, Action::Up),
        key(KeyCode::Down, Action::Down),
    ],
    &[ch('j', Action::Down), ch('k', Action::Up)],
];
/// Enter.
pub const ENTER: &[&[Bind]] = &[&[key(KeyCode::Enter, Action::Open)]];
/// Esc goes back.
pub const ESC_BACK: &[Bind] = &[key(KeyCode::Esc, Action::Back)];
pub const ESC: &[&[Bind]] = &[ESC_BACK];
/// Tab: the next pane.
pub const TAB: &[&[Bind]] = &[&[key(KeyCode::Tab, Action::NextPane)]];

pub const HELP: Binding = b(
    &[&[ch('?', Action::Help)]],
    "help",
    "Show the keys of this screen (F1 too)",
);
/// Where letters are text (fields, filters), help is on F1.
pub const F1_HELP: Binding = b(&[&[F1]], "help", "Show the keys of this screen");
pub const QUIT_NOW: Binding = Binding {
    keys: &[&[CTRL_C]],
    short: "",
    help: Help::Says("Leave at once; the daemon logs this console's users out"),
};
/// `1`-N: one per tab.
pub const TABS: Binding = Binding {
    keys: &[&[Bind::Tabs]],
    short: "screens",
    help: Help::Tabs,
};
pub const BACK_TOP: Binding = b(
    &[&[ch('q', Action::Back)], &[key(KeyCode::Esc, Action::Back)]],
    "quit",
    "Leave the console (asks first)",
);
const REFRESH: &[&[Bind]] = &[&[ch('r', Action::Refresh)]];
const FILTER: &[&[Bind]] = &[&[ch('/', Action::Filter)]];

/// `r`: ask again.
pub const fn refresh(long: &'static str) -> Binding {
    b(REFRESH, "refresh", long)
}
/// `/`: filter.
pub const fn filter(long: &'static str) -> Binding {
    b(FILTER, "filter", long)
}

/// The keys every screen takes, listed there or not.
pub const SCREEN_KEYS: Binding = unlisted(&[&[
    ch('?', Action::Help),
    ch('q', Action::Back),
    key(KeyCode::Esc, Action::Back),
    key(KeyCode::Tab, Action::NextPane),
    key(KeyCode::BackTab, Action::PrevPane),
    key(KeyCode::Up, Action::Up),
    ch('k', Action::Up),
    key(KeyCode::Down, Action::Down),
    ch('j', Action::Down),
    key(KeyCode::PageUp, Action::PageUp),
    key(KeyCode::PageDown, Action::PageDown),
    key(KeyCode::Home, Action::Top),
    ch('g', Action::Top),
    key(KeyCode::End, Action::Bottom),
    ch('G', Action::Bottom),
    key(KeyCode::Enter, Action::Open),
    ch('r', Action::Refresh),
    Bind::Tabs,
]]);

/// The keys of text entry (the login form, filters, forms): letters are text.
pub const TEXT_KEYS: Binding = unlisted(&[&[
    Bind::Ctrl('u', Action::ClearInput),
    Bind::Text,
    key(KeyCode::Backspace, Action::Backspace),
    key(KeyCode::Enter, Action::Open),
    key(KeyCode::Esc, Action::Back),
    key(KeyCode::Tab, Action::NextPane),
    key(KeyCode::BackTab, Action::PrevPane),
    key(KeyCode::Up, Action::Up),
    key(KeyCode::Down, Action::Down),
    key(KeyCode::Left, Action::Left),
    key(KeyCode::Right, Action::Right),
]]);

/// Ctrl-U in a text field.
pub const CLEAR: &[&[Bind]] = &[&[Bind::Ctrl('u', Action::ClearInput)]];

/// What every screen takes after its own keys.
pub const ON_A_SCREEN: &[Binding] = &[TABS, HELP, BACK_TOP, QUIT_NOW, SCREEN_KEYS];
/// What every place where letters are text takes after its own keys.
pub const TYPING: &[Binding] = &[F1_HELP, QUIT_NOW, TEXT_KEYS];

/// A filter being typed: `keep` says what Enter goes back to.
pub const fn filter_keys(keep: &'static str) -> [Binding; 3] {
    [
        b(ENTER, "keep", keep),
        b(ESC, "clear", "Clear the filter"),
        b(CLEAR, "erase", "Erase the filter text"),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }
    pub(crate) fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    /// The keys the issue named for every screen.
    pub(crate) fn screen_keys_of_the_issue(keymap: &Keymap) {
        for (code, action) in [
            (KeyCode::Char('?'), Action::Help),
            (KeyCode::Esc, Action::Back),
            (KeyCode::Tab, Action::NextPane),
            (KeyCode::Up, Action::Up),
            (KeyCode::Down, Action::Down),
            (KeyCode::Enter, Action::Open),
        ] {
            assert_eq!(
                keymap.action(press(code)),
                Some(action),
                "{}: {code:?}",
                keymap.name
            );
        }
    }

    /// Every keymap of the console: the screens' and the dialogs'.
    pub(crate) fn all() -> Vec<&'static Keymap> {
        let mut all: Vec<&'static Keymap> = crate::app::dialogs::KEYMAPS.to_vec();
        for screen in crate::screens::all() {
            all.extend(screen.keymaps());
        }
        all
    }

    /// Key presses to try on every keymap.
    fn presses() -> Vec<KeyEvent> {
        let mut keys = Vec::new();
        let codes = [
            KeyCode::Enter,
            KeyCode::Esc,
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::Left,
            KeyCode::Right,
            KeyCode::PageUp,
            KeyCode::PageDown,
            KeyCode::Home,
            KeyCode::End,
            KeyCode::Backspace,
            KeyCode::F(1),
            KeyCode::F(2),
        ];
        let chars = (' '..='~').map(KeyCode::Char);
        for code in codes.into_iter().chain(chars) {
            for modifiers in [
                KeyModifiers::NONE,
                KeyModifiers::SHIFT,
                KeyModifiers::CONTROL,
                KeyModifiers::ALT,
            ] {
                keys.push(KeyEvent::new(code, modifiers));
            }
        }
        keys
    }

    #[test]
    fn ctrl_c_quits_everywhere() {
        for keymap in all() {
            assert_eq!(
                keymap.action(ctrl('c')),
                Some(Action::Quit),
                "{}",
                keymap.name
            );
        }
    }

    #[test]
    fn no_key_means_two_things_in_one_place() {
        for keymap in all() {
            for key in presses() {
                let actions: Vec<Action> = keymap
                    .all()
                    .flat_map(Binding::binds)
                    .filter(|b| !b.is_catch_all())
                    .filter_map(|b| b.action(&key))
                    .collect();
                assert!(
                    actions.windows(2).all(|w| w[0] == w[1]),
                    "{}: {key:?} does {actions:?}",
                    keymap.name
                );
            }
        }
    }

    #[test]
    fn keymap_names_are_unique() {
        let names: Vec<&str> = all().iter().map(|k| k.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    #[test]
    fn every_keymap_documents_help_or_closing_and_ctrl_c() {
        let dialogs = crate::app::dialogs::KEYMAPS;
        for keymap in all() {
            let listed: Vec<String> = keymap
                .all()
                .filter(|b| b.help != Help::Unlisted)
                .map(|b| b.keys_text(7))
                .collect();
            assert!(!listed.is_empty(), "{}", keymap.name);
            if !dialogs.contains(&keymap) {
                assert!(listed.iter().any(|k| k == "Ctrl-C"), "{}", keymap.name);
            }
        }
    }

    #[test]
    fn hints_are_drawn_from_the_keys() {
        assert_eq!(
            b(MOVE, "move", "").keys_text(7),
            "↑↓/jk",
            "a group side by side, groups joined by /"
        );
        assert_eq!(BACK_TOP.keys_text(7), "q/Esc");
        assert_eq!(QUIT_NOW.keys_text(7), "Ctrl-C");
        assert_eq!(F1_HELP.keys_text(7), "F1");
        assert_eq!(b(CLEAR, "", "").keys_text(7), "Ctrl-U");
        const FOLD: &[&[Bind]] = &[
            &[
                key(KeyCode::Left, Action::Left),
                key(KeyCode::Right, Action::Right),
            ],
            &[ch(' ', Action::Toggle)],
        ];
        assert_eq!(b(FOLD, "", "").keys_text(7), "←→/Space");
    }

    #[test]
    fn the_screens_binding_counts_the_tabs_and_names_them() {
        assert_eq!(TABS.keys_text(7), "1-7");
        assert_eq!(
            TABS.help_text(&["Session", "Status", "Jobs"]).as_deref(),
            Some("Go to Session, Status or Jobs")
        );
        let map = Keymap::dialog("test", &[TABS]);
        for (c, n) in [('1', 1), ('7', 7), ('9', 9)] {
            assert_eq!(map.action(press(KeyCode::Char(c))), Some(Action::Goto(n)));
        }
        assert_eq!(map.action(press(KeyCode::Char('0'))), None);
    }

    #[test]
    fn letters_are_text_in_fields_and_f1_is_help() {
        const MAP: Keymap = Keymap::typing("text", "", &filter_keys("keep"));
        let map = MAP;
        for c in ['q', 'j', 'k', 'x', '/', '?', '1', 'r', 'G'] {
            assert_eq!(map.action(press(KeyCode::Char(c))), Some(Action::Input(c)));
        }
        assert_eq!(map.action(ctrl('u')), Some(Action::ClearInput));
        assert_eq!(map.action(ctrl('x')), None, "Ctrl and a letter is not text");
        assert_eq!(map.action(press(KeyCode::F(1))), Some(Action::Help));
        assert_eq!(map.action(press(KeyCode::Esc)), Some(Action::Back));
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut release = press(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        for keymap in all() {
            assert_eq!(keymap.action(release), None, "{}", keymap.name);
        }
    }
}
