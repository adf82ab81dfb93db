//! The key database: a tree of key groups (`group_list`), each expandable to its keys
//! (`key_list`), with each key's state, fingerprint, AWS key id, alias (★ on the key that holds
//! it), created and valid-to. `/` filters by group name, key id, AWS key id or alias.

use std::collections::BTreeSet;

use keyward_proto::{GroupView, KeyView, Request};

use super::{App, Effect, Purpose};
use crate::keys::Action;

#[derive(Debug, Default)]
pub struct KeyDb {
    pub groups: Vec<GroupView>,
    /// Every key, as `key_list` sent them (newest last within a group).
    pub keys: Vec<KeyView>,
    pub groups_loaded: bool,
    pub keys_loaded: bool,
    /// Groups folded shut (every group starts open).
    pub collapsed: BTreeSet<String>,
    /// Index into [`KeyDb::rows`].
    pub selected: usize,
    pub filter: String,
    pub filtering: bool,
}

/// One line of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeRow<'a> {
    Group {
        group: &'a GroupView,
        open: bool,
        /// Its keys (all of them, whatever the filter).
        keys: usize,
    },
    Key(&'a KeyView),
}

impl KeyDb {
    pub fn loaded(&self) -> bool {
        self.groups_loaded
    }

    /// The tree as shown: each group the filter lets through, then (when open) its keys the
    /// filter lets through. A group that matches shows all its keys; one that does not shows
    /// only the keys that match, opened.
    pub fn rows(&self) -> Vec<TreeRow<'_>> {
        let needle = self.filter.to_lowercase();
        let hit = |text: &str| text.to_lowercase().contains(&needle);
        let mut rows = Vec::new();
        for group in &self.groups {
            let keys: Vec<&KeyView> = self.keys.iter().filter(|k| k.group == group.name).collect();
            let group_hit = needle.is_empty() || hit(&group.name) || hit(&group.alias);
            let shown: Vec<&KeyView> = if group_hit {
                keys.clone()
            } else {
                keys.iter()
                    .copied()
                    .filter(|k| {
                        hit(&k.id)
                            || k.aws_key_id.as_deref().is_some_and(hit)
                            || k.alias.as_deref().is_some_and(hit)
                    })
                    .collect()
            };
            if !group_hit && shown.is_empty() {
                continue;
            }
            let open = !group_hit || !self.collapsed.contains(&group.name);
            rows.push(TreeRow::Group {
                group,
                open,
                keys: keys.len(),
            });
            if open {
                rows.extend(shown.into_iter().map(TreeRow::Key));
            }
        }
        rows
    }

    pub fn selected_row(&self) -> Option<TreeRow<'_>> {
        self.rows().get(self.selected).copied()
    }

    /// The group of the selected row (the group itself, or the key's).
    pub fn selected_group(&self) -> Option<&GroupView> {
        match self.selected_row()? {
            TreeRow::Group { group, .. } => Some(group),
            TreeRow::Key(key) => self.groups.iter().find(|g| g.name == key.group),
        }
    }

    pub fn selected_key(&self) -> Option<&KeyView> {
        match self.selected_row()? {
            TreeRow::Key(key) => Some(key),
            TreeRow::Group { .. } => None,
        }
    }

    pub(super) fn clamp(&mut self) {
        let n = self.rows().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    /// Moves the selection to the row of `group`.
    fn select_group(&mut self, name: &str) {
        if let Some(i) = self
            .rows()
            .iter()
            .position(|r| matches!(r, TreeRow::Group { group, .. } if group.name == name))
        {
            self.selected = i;
        }
    }

    fn set_open(&mut self, open: Option<bool>) {
        let Some(group) = self.selected_group().map(|g| g.name.clone()) else {
            return;
        };
        let now_open = !self.collapsed.contains(&group);
        let on_key = self.selected_key().is_some();
        match open.unwrap_or(!now_open) {
            true => {
                self.collapsed.remove(&group);
            }
            false => {
                self.collapsed.insert(group.clone());
                if on_key {
                    self.select_group(&group);
                }
            }
        }
        self.clamp();
    }
}

impl App {
    pub(super) fn keys_load(&mut self, out: &mut Vec<Effect>) {
        self.send_once(Purpose::GroupList, Request::GroupList, out);
        self.send_once(Purpose::KeyList, Request::KeyList { group: None }, out);
    }

    pub(super) fn keys_action(&mut self, action: Action) {
        let db = &mut self.keydb;
        if db.filtering {
            match action {
                Action::Input(c) => db.filter.push(c),
                Action::Backspace => {
                    db.filter.pop();
                }
                Action::ClearInput => db.filter.clear(),
                Action::Open => db.filtering = false,
                _ => {}
            }
            db.selected = 0;
            db.clamp();
            return;
        }
        let last = db.rows().len().saturating_sub(1);
        let at = &mut db.selected;
        match action {
            Action::Up => *at = at.saturating_sub(1),
            Action::Down => *at = (*at + 1).min(last),
            Action::PageUp => *at = at.saturating_sub(10),
            Action::PageDown => *at = (*at + 10).min(last),
            Action::Top => *at = 0,
            Action::Bottom => *at = last,
            Action::Filter => db.filtering = true,
            Action::Left => db.set_open(Some(false)),
            Action::Right => db.set_open(Some(true)),
            Action::Toggle => db.set_open(None),
            _ => {}
        }
    }

    pub(super) fn keys_reply(&mut self, purpose: Purpose, data: serde_json::Value) {
        match purpose {
            Purpose::GroupList => {
                if let Some(groups) = self.parse::<Vec<GroupView>>(purpose, data) {
                    self.keydb.groups = groups;
                    self.keydb.groups_loaded = true;
                }
            }
            Purpose::KeyList => {
                if let Some(keys) = self.parse::<Vec<KeyView>>(purpose, data) {
                    self.keydb.keys = keys;
                    self.keydb.keys_loaded = true;
                }
            }
            _ => {}
        }
        self.keydb.clamp();
    }
}
