//! Keys: the key database, a tree of key groups (`group_list`), each expandable to its keys
//! (`key_list`), with the selected group's schedule (`schedule_list`) under it. `/` filters by
//! group name, key id, AWS key id or alias (`tree.rs`). The actions on a group or key (test,
//! force rotate, remove, synchronise, in a menu or by their keys) are in `actions.rs`, the
//! group editor in `editor.rs`, the drawing in `draw.rs`.

mod actions;
mod draw;
pub mod editor;
mod tree;

use std::collections::BTreeSet;

use crossterm::event::KeyCode;
use keyward_proto::{GroupView, KeyView, Reply, Request, ScheduleView};
use ratatui::Frame;
use ratatui::layout::Rect;

pub use tree::TreeRow;

use super::{Filter, Screen, Tab};
use crate::app::{Purpose, Shell};
use crate::input::Form;
use crate::keys::{Action, Keymap, MOVE, b, ch, filter, filter_keys, key, refresh, unlisted};
use crate::theme::Theme;

pub const TREE: Keymap = Keymap::screen(
    "keys",
    "Key database",
    &[
        b(
            MOVE,
            "move",
            "Select a group or key (PgUp/PgDn, g/G: first/last)",
        ),
        b(
            &[
                &[key(KeyCode::Enter, Action::Open)],
                &[ch('m', Action::Menu)],
            ],
            "actions",
            "The actions for the selected group or key, in a menu",
        ),
        b(
            &[&[ch('t', Action::Test)]],
            "test",
            "Test the group's connection to AWS: Connected or not, and each check",
        ),
        b(
            &[&[ch('R', Action::Rotate)]],
            "rotate",
            "Force-rotate the group (asks first); a job, its log one key away",
        ),
        b(
            &[&[ch('s', Action::Sync)]],
            "sync",
            "Synchronise the selected key with AWS: choose what, then confirm",
        ),
        b(
            &[&[ch('D', Action::Remove)]],
            "remove",
            "Remove the selected group (asks first; refused while it holds keys)",
        ),
        b(
            &[&[ch('n', Action::Add)]],
            "new",
            "A new key group: the editor, two tabs (Group, AWS properties)",
        ),
        b(
            &[&[ch('e', Action::Edit)]],
            "edit",
            "Edit the selected group; only the changed fields are sent",
        ),
        b(
            &[
                &[
                    key(KeyCode::Left, Action::Left),
                    key(KeyCode::Right, Action::Right),
                ],
                &[ch(' ', Action::Toggle)],
            ],
            "fold",
            "Fold or unfold the selected group (h/l too)",
        ),
        filter("Show only groups and keys whose name, key id, AWS key id or alias match"),
        refresh("Ask for the groups and keys again"),
        unlisted(&[&[ch('h', Action::Left), ch('l', Action::Right)]]),
    ],
);

pub const FILTER: Keymap = Keymap::typing(
    "keys filter",
    "Key database",
    &filter_keys("Keep the filter and go back to the tree"),
);

#[derive(Debug, Default)]
pub struct KeyDb {
    pub groups: Vec<GroupView>,
    /// Every key, as `key_list` sent them (newest last within a group).
    pub keys: Vec<KeyView>,
    pub groups_loaded: bool,
    /// `schedule_list`: one entry per scheduled group.
    pub schedule: Vec<ScheduleView>,
    pub schedule_loaded: bool,
    /// Groups folded shut (every group starts open).
    pub collapsed: BTreeSet<String>,
    /// Index into [`KeyDb::rows`].
    pub selected: usize,
    pub filter: Filter,
    /// The stored credentials' names, from the last `credential_list`: the editor offers them.
    credentials: Vec<String>,
}

impl KeyDb {
    fn load(shell: &mut Shell) {
        shell.send_once(Request::GroupList);
        shell.send_once(Request::KeyList { group: None });
        shell.send_once(Request::ScheduleList);
    }
}

impl Screen for KeyDb {
    fn tab(&self) -> Tab {
        Tab {
            name: "Keys",
            short: "Keys",
        }
    }

    fn keymap(&self) -> &'static Keymap {
        if self.filter.typing { &FILTER } else { &TREE }
    }

    fn keymaps(&self) -> Vec<&'static Keymap> {
        vec![&TREE, &FILTER]
    }

    fn refresh(&mut self, shell: &mut Shell) {
        Self::load(shell);
    }

    fn on_action(&mut self, action: Action, shell: &mut Shell) {
        let len = self.rows().len();
        if self.filter.took_or_moved(action, &mut self.selected, len) {
            return;
        }
        match action {
            Action::Filter => self.filter.typing = true,
            Action::Left => self.set_open(Some(false)),
            Action::Right => self.set_open(Some(true)),
            Action::Toggle => self.set_open(None),
            Action::Open | Action::Menu => self.open_menu(shell),
            Action::Test => self.test(shell),
            Action::Rotate => self.ask_rotate(shell),
            Action::Remove => self.ask_remove(shell),
            Action::Sync => self.open_sync(shell),
            Action::Add => self.open_editor(false, shell),
            Action::Edit => self.open_editor(true, shell),
            _ => {}
        }
    }

    /// Esc in the filter clears it.
    fn back(&mut self, _shell: &mut Shell) -> bool {
        if self.filter.closed() {
            self.clamp();
            return true;
        }
        false
    }

    fn on_reply(&mut self, _purpose: Purpose, reply: &Reply, shell: &mut Shell) {
        match reply {
            Reply::GroupList(groups) => {
                self.groups = groups.clone();
                self.groups_loaded = true;
            }
            Reply::KeyList(keys) => self.keys = keys.clone(),
            Reply::ScheduleList(schedule) => {
                self.schedule = schedule.clone();
                self.schedule_loaded = true;
            }
            Reply::CredentialList(list) => {
                self.credentials = list.iter().map(|c| c.name.clone()).collect();
                self.credentials_for_editor(shell);
                return;
            }
            Reply::GroupCreate(group) | Reply::GroupSet(group) => {
                self.group_saved(matches!(reply, Reply::GroupCreate(_)), group, shell);
                return;
            }
            other => {
                if !self.action_answered(other, shell) {
                    return;
                }
            }
        }
        self.clamp();
    }

    fn submit(&mut self, form: &mut Form, shell: &mut Shell) {
        if form.kind == actions::SYNC {
            self.submit_sync(form, shell);
        } else {
            self.submit_group(form, shell);
        }
    }

    fn logged_out(&mut self) {
        *self = Self::default();
    }

    fn draw(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
        draw::render(self, shell, theme, frame, area);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::app::App;
    use crate::app::tests::{dual, key, ok, p, sending, sent, session, typed};
    use crate::fixtures::{self, kms_key};
    use crate::keys::tests::press;
    use keyward_proto::{KeyState, Op};

    pub(crate) fn db(app: &App) -> &KeyDb {
        app.screen::<KeyDb>().expect("the keys screen")
    }

    pub(crate) fn group(name: &str, alias: &str) -> GroupView {
        fixtures::group(name, alias, "90d", 2)
    }

    /// Keys on show with two groups: payments (aa01 previous, aa02 active) and billing (bb01).
    pub(crate) fn keydb(app: &mut App) {
        let effects = key(app, KeyCode::Char('7'));
        assert_eq!(
            sent(&effects),
            [p(Op::GroupList), p(Op::KeyList), p(Op::ScheduleList)]
        );
        assert!(effects.contains(&sending(p(Op::KeyList), Request::KeyList { group: None })));
        ok(
            app,
            Reply::GroupList(vec![
                group("payments", "alias/payments"),
                group("billing", "alias/billing"),
            ]),
        );
        ok(
            app,
            Reply::KeyList(vec![
                kms_key(
                    "aa01",
                    "payments",
                    KeyState::Previous,
                    Some("1111-aaaa"),
                    None,
                ),
                kms_key(
                    "aa02",
                    "payments",
                    KeyState::Active,
                    Some("2222-bbbb"),
                    Some("alias/payments"),
                ),
                kms_key(
                    "bb01",
                    "billing",
                    KeyState::Active,
                    Some("3333-cccc"),
                    Some("alias/billing"),
                ),
            ]),
        );
        ok(app, Reply::ScheduleList(Vec::new()));
    }

    #[test]
    fn the_key_database_is_a_tree_that_folds() {
        let mut app = dual();
        keydb(&mut app);
        assert_eq!(app.context(), &TREE);
        assert_eq!(db(&app).rows().len(), 5, "both groups open");
        key(&mut app, KeyCode::Down);
        assert_eq!(db(&app).selected_key().map(|k| k.id.as_str()), Some("aa01"));
        // ← on a key folds its group and selects the group.
        key(&mut app, KeyCode::Left);
        assert_eq!(db(&app).rows().len(), 3);
        assert_eq!(db(&app).selected, 0);
        assert!(db(&app).selected_key().is_none());
        assert_eq!(
            db(&app).selected_group().map(|g| g.name.as_str()),
            Some("payments")
        );
        key(&mut app, KeyCode::Char(' '));
        assert_eq!(db(&app).rows().len(), 5, "Space unfolds");
        key(&mut app, KeyCode::Char('G'));
        assert_eq!(db(&app).selected_key().map(|k| k.id.as_str()), Some("bb01"));
        assert_eq!(
            db(&app).selected_group().map(|g| g.name.as_str()),
            Some("billing")
        );
        // r asks for both again.
        assert_eq!(
            sent(&key(&mut app, KeyCode::Char('r'))),
            [p(Op::GroupList), p(Op::KeyList), p(Op::ScheduleList)]
        );
    }

    #[test]
    fn the_key_filter_matches_group_key_aws_id_or_alias() {
        let mut app = dual();
        keydb(&mut app);
        key(&mut app, KeyCode::Char('/'));
        assert_eq!(app.context(), &FILTER);
        typed(&mut app, "2222");
        let rows = db(&app).rows();
        assert_eq!(rows.len(), 2, "the group and its matching key");
        assert!(matches!(rows[1], TreeRow::Key(k) if k.id == "aa02"));
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.context(), &TREE);
        key(&mut app, KeyCode::Char('/'));
        crate::app::tests::ctrl(&mut app, 'u');
        typed(&mut app, "alias/bill");
        assert_eq!(
            db(&app).rows().len(),
            2,
            "the group's alias matches: all its keys"
        );
        crate::app::tests::ctrl(&mut app, 'u');
        typed(&mut app, "BB01");
        assert_eq!(db(&app).rows().len(), 2);
        typed(&mut app, "x");
        assert!(db(&app).rows().is_empty());
        key(&mut app, KeyCode::Esc);
        assert_eq!(db(&app).rows().len(), 5, "Esc clears it");
        // Logging out forgets the tree.
        ok(&mut app, Reply::Logout(session(&[])));
        assert!(db(&app).groups.is_empty() && !db(&app).loaded());
    }

    #[test]
    fn the_schedule_of_the_selected_group_is_shown() {
        let mut app = dual();
        keydb(&mut app);
        ok(
            &mut app,
            Reply::ScheduleList(vec![fixtures::schedule(
                "billing",
                "90d",
                "now",
                None,
                Some("job 8 failed: cloud: throttled"),
                Some("waiting to retry"),
            )]),
        );
        assert!(db(&app).schedule_loaded);
        assert!(db(&app).selected_schedule().is_none(), "payments has none");
        key(&mut app, KeyCode::Char('G'));
        let schedule = db(&app).selected_schedule().unwrap();
        assert_eq!(schedule.delay.as_deref(), Some("waiting to retry"));
    }

    #[test]
    fn the_key_database_keys() {
        let keys = |code| TREE.action(press(code));
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
        assert_eq!(keys(KeyCode::Char('n')), Some(Action::Add));
        assert_eq!(keys(KeyCode::Char('e')), Some(Action::Edit));
        assert_eq!(keys(KeyCode::Enter), Some(Action::Open));
        assert_eq!(
            crate::screens::users::USERS.action(press(KeyCode::Char('R'))),
            Some(Action::Reset)
        );
        for c in ['h', 'l', ' ', 'q', '7'] {
            assert_eq!(
                FILTER.action(press(KeyCode::Char(c))),
                Some(Action::Input(c))
            );
        }
    }
}
