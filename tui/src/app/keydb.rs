//! The key database: a tree of key groups (`group_list`), each expandable to its keys
//! (`key_list`), with each key's state, fingerprint, AWS key id, alias (★ on the key that holds
//! it), created and valid-to. `/` filters by group name, key id, AWS key id or alias.

use std::collections::BTreeSet;

use keyward_proto::{GroupTestReport, GroupView, JobStarted, KeyView, Request, ScheduleView};

use super::{App, Confirm, Confirmable, Effect, Info, Menu, Purpose};
use crate::input::{Form, FormField, FormKind};
use crate::keys::Action;

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
        self.send_once(Purpose::ScheduleList, Request::ScheduleList, out);
    }

    pub(super) fn keys_action(&mut self, action: Action, out: &mut Vec<Effect>) {
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
        let len = db.rows().len();
        if super::move_selection(&mut db.selected, len, action) {
            return;
        }
        match action {
            Action::Filter => db.filtering = true,
            Action::Left => db.set_open(Some(false)),
            Action::Right => db.set_open(Some(true)),
            Action::Toggle => db.set_open(None),
            Action::Open | Action::Menu => self.open_menu(),
            Action::Test => self.group_test(out),
            Action::Rotate => self.ask_rotate(),
            Action::Remove => self.ask_group_remove(),
            Action::Sync => self.open_sync(),
            Action::Add => self.open_group_editor(false, out),
            Action::Edit => self.open_group_editor(true, out),
            _ => {}
        }
    }

    /// The actions for the selected row: a group's, or a key's and its group's.
    fn open_menu(&mut self) {
        let Some(row) = self.keydb.selected_row() else {
            self.notice = Some("Nothing is selected.".into());
            return;
        };
        let (title, items) = match row {
            TreeRow::Group { group, open, .. } => (
                format!("Group {}", group.name),
                vec![
                    ('e', "Edit…".to_string(), Action::Edit),
                    ('t', "Test connection".to_string(), Action::Test),
                    ('R', "Force rotate…".to_string(), Action::Rotate),
                    ('D', "Remove group…".to_string(), Action::Remove),
                    (
                        ' ',
                        if open { "Fold" } else { "Unfold" }.to_string(),
                        Action::Toggle,
                    ),
                ],
            ),
            TreeRow::Key(key) => (
                format!("Key {}", key.id),
                vec![
                    ('s', "Synchronise with AWS…".to_string(), Action::Sync),
                    (
                        't',
                        format!("Test connection of {}", key.group),
                        Action::Test,
                    ),
                    ('R', format!("Force rotate {}…", key.group), Action::Rotate),
                ],
            ),
        };
        self.menu = Some(Menu {
            title,
            items,
            selected: 0,
        });
    }

    pub(super) fn menu_action(&mut self, action: Action) -> Vec<Effect> {
        let Some(menu) = self.menu.as_mut() else {
            return Vec::new();
        };
        let len = menu.items.len();
        if super::move_selection(&mut menu.selected, len, action) {
            return Vec::new();
        }
        let picked = match action {
            Action::Open => menu.items.get(menu.selected).map(|item| item.2),
            Action::Input(c) => menu
                .items
                .iter()
                .find(|(key, _, _)| *key == c)
                .map(|item| item.2),
            _ => None,
        };
        let Some(action) = picked else {
            return Vec::new();
        };
        self.menu = None;
        let mut out = Vec::new();
        self.keys_action(action, &mut out);
        out
    }

    fn group_test(&mut self, out: &mut Vec<Effect>) {
        let Some(name) = self.keydb.selected_group().map(|g| g.name.clone()) else {
            self.notice = Some("No group is selected.".into());
            return;
        };
        self.notice = Some(format!("Testing {name}'s connection to AWS …"));
        self.send_once(Purpose::GroupTest, Request::GroupTest { name }, out);
    }

    fn ask_rotate(&mut self) {
        let Some(group) = self.keydb.selected_group() else {
            self.notice = Some("No group is selected.".into());
            return;
        };
        let name = group.name.clone();
        let effect = if group.rotation_mode == "new-material" && group.active_key.is_some() {
            format!(
                "Force rotate group {name}: new key material is generated in the HSM and imported into the group's KMS key, which rotates on demand; {} stays on it. It runs as a job.",
                group.alias
            )
        } else {
            let previous = if group.disable_previous {
                "the key that loses it is disabled"
            } else {
                "the previous key stays enabled"
            };
            format!(
                "Force rotate group {name}: a new key is generated and {} moves to it; {previous}. It runs as a job.",
                group.alias
            )
        };
        self.ask(
            format!("Force rotate {name}?"),
            effect,
            Purpose::GroupRotate,
            Request::GroupRotate { name },
        );
    }

    fn ask_group_remove(&mut self) {
        let Some(TreeRow::Group { group, keys, .. }) = self.keydb.selected_row() else {
            self.notice = Some("Select a group to remove (a key is not removed alone).".into());
            return;
        };
        let name = group.name.clone();
        let effect = if keys == 0 {
            format!(
                "Remove group {name}: its settings ({}, {}, its schedule and policy) are deleted; no key is touched.",
                group.alias, group.region
            )
        } else {
            format!(
                "Remove group {name}: it holds {keys} key{}, so the daemon refuses; a group is removed once it has none.",
                if keys == 1 { "" } else { "s" }
            )
        };
        self.ask(
            format!("Remove group {name}?"),
            effect,
            Purpose::GroupRemove,
            Request::GroupRemove { name },
        );
    }

    fn open_sync(&mut self) {
        let Some(key) = self.keydb.selected_key() else {
            self.notice = Some("Select a key to synchronise (s works on a key row).".into());
            return;
        };
        self.form = Some(
            Form::new(
                FormKind::KeySync,
                format!("Synchronise key {}", key.id),
                "Space toggles. Enter on the last box asks to confirm; Esc cancels.",
            )
            .target(key.id.clone())
            .field(FormField::check("Delete key material", false))
            .field(FormField::check("Update policy", true))
            .field(FormField::check("Import key material", true)),
        );
    }

    pub(super) fn submit_key_sync(&mut self, form: &Form) {
        let key = form.target.clone();
        let (delete_material, update_policy, import_material) =
            (form.checked(0), form.checked(1), form.checked(2));
        let mut parts = Vec::new();
        if delete_material {
            parts.push(
                "delete its key material in KMS (nothing decrypts with it until the material is back)",
            );
        }
        if update_policy {
            parts.push("put the group's current key policy on it");
        }
        if import_material {
            parts.push(
                "import the same material again from the HSM (what it encrypted decrypts again)",
            );
        }
        if parts.is_empty() {
            self.notice = Some("Nothing to do: check at least one box.".into());
            return;
        }
        let mut effect = format!("Synchronise key {key} with AWS: {}.", parts.join("; then "));
        if delete_material && !import_material {
            effect.push_str(" The key stays without material in AWS until it is imported again.");
        }
        effect.push_str(" It runs as a job.");
        self.ask(
            format!("Synchronise key {key}?"),
            effect,
            Purpose::KeySync,
            Request::KeySync {
                key,
                delete_material,
                update_policy,
                import_material,
            },
        );
    }

    pub(super) fn keys_reply(
        &mut self,
        purpose: Purpose,
        data: serde_json::Value,
        out: &mut Vec<Effect>,
    ) {
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
                }
            }
            Purpose::ScheduleList => {
                if let Some(schedule) = self.parse::<Vec<ScheduleView>>(purpose, data) {
                    self.keydb.schedule = schedule;
                    self.keydb.schedule_loaded = true;
                }
            }
            Purpose::GroupTest => {
                self.notice = None;
                if let Some(report) = self.parse::<GroupTestReport>(purpose, data) {
                    self.info = Some(test_info(report));
                }
            }
            Purpose::GroupRotate | Purpose::KeySync => {
                let Some(JobStarted { job: id }) = self.parse(purpose, data) else {
                    return;
                };
                let what = if purpose == Purpose::GroupRotate {
                    "The rotation"
                } else {
                    "The synchronisation"
                };
                self.confirm = Some(Confirm {
                    title: format!("Job {id} started"),
                    effect: format!("{what} is job {id}. Open its log now (Jobs screen)?"),
                    then: Confirmable::OpenJob(id),
                });
                self.send_once(Purpose::JobList, Request::JobList, out);
            }
            Purpose::GroupRemove => {
                let name = data
                    .get("removed")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("the group");
                self.notice = Some(format!("Removed group {name}."));
                self.keys_load(out);
            }
            _ => {}
        }
        self.keydb.clamp();
    }
}

/// `group_test` as a dialog: Connected or Not connected, the endpoint, each check.
fn test_info(report: GroupTestReport) -> Info {
    let connected = report.connection == keyward_proto::Connection::Connected;
    let mut lines = vec![
        ("Connection".to_string(), report.connection.to_string()),
        ("Endpoint".to_string(), report.endpoint),
    ];
    for check in report.checks {
        let verdict = if check.ok { "ok" } else { "FAILED" };
        lines.push((check.permission, format!("{verdict}: {}", check.detail)));
    }
    Info {
        title: format!("Test of group {}", report.group),
        lines,
        scroll: 0,
        bad: !connected,
    }
}
