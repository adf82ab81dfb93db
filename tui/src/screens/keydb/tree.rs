//! The tree as shown: each group the filter lets through and, when open, its keys; and what
//! the selection is on.

use keyward_proto::{GroupView, KeyView, ScheduleView};

use super::KeyDb;

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
        let hit = |text: &str| self.filter.hit(text);
        let mut rows = Vec::new();
        for group in &self.groups {
            let keys: Vec<&KeyView> = self.keys.iter().filter(|k| k.group == group.name).collect();
            let group_hit = hit(&group.name) || hit(&group.alias);
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

    /// The schedule of the selected row's group, if it has one.
    pub fn selected_schedule(&self) -> Option<&ScheduleView> {
        let group = self.selected_group()?;
        self.schedule.iter().find(|s| s.group == group.name)
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

    pub(super) fn set_open(&mut self, open: Option<bool>) {
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
