//! What can be done to the selected group or key: its context menu, testing the group's
//! connection to AWS, force-rotating it, removing it, and synchronising a key with AWS. Each
//! sensitive one asks first, naming its effect; a started job offers its log.

use keyward_proto::{
    Connection, GroupTestReport, JobStarted, Reply, Request, fields::RotationMode,
};

use super::{KeyDb, TreeRow};
use crate::app::Shell;
use crate::app::dialogs::{Confirm, Confirmable, Info, Menu};
use crate::input::{Form, FormField, FormKind};
use crate::keys::Action;
use crate::screens::ScreenId;
use crate::screens::jobs::Jobs;

/// The synchronise form.
pub(super) const SYNC: FormKind = FormKind("key sync");

impl KeyDb {
    /// The actions for the selected row: a group's, or a key's and its group's.
    pub(super) fn open_menu(&self, shell: &mut Shell) {
        let Some(row) = self.selected_row() else {
            shell.notice = Some("Nothing is selected.".into());
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
        shell.open_menu(Menu {
            title,
            items,
            selected: 0,
        });
    }

    pub(super) fn test(&self, shell: &mut Shell) {
        let Some(name) = self.selected_group().map(|g| g.name.clone()) else {
            shell.notice = Some("No group is selected.".into());
            return;
        };
        shell.notice = Some(format!("Testing {name}'s connection to AWS …"));
        shell.send_once(Request::GroupTest { name });
    }

    pub(super) fn ask_rotate(&self, shell: &mut Shell) {
        let Some(group) = self.selected_group() else {
            shell.notice = Some("No group is selected.".into());
            return;
        };
        let name = group.name.clone();
        let effect = if group.rotation_mode == RotationMode::NewMaterial.as_str()
            && group.active_key.is_some()
        {
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
        shell.ask(
            format!("Force rotate {name}?"),
            effect,
            Request::GroupRotate { name },
        );
    }

    pub(super) fn ask_remove(&self, shell: &mut Shell) {
        let Some(TreeRow::Group { group, keys, .. }) = self.selected_row() else {
            shell.notice = Some("Select a group to remove (a key is not removed alone).".into());
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
        shell.ask(
            format!("Remove group {name}?"),
            effect,
            Request::GroupRemove { name },
        );
    }

    pub(super) fn open_sync(&self, shell: &mut Shell) {
        let Some(key) = self.selected_key() else {
            shell.notice = Some("Select a key to synchronise (s works on a key row).".into());
            return;
        };
        shell.open_form(
            Form::new(
                SYNC,
                format!("Synchronise key {}", key.id),
                "Space toggles. Enter on the last box asks to confirm; Esc cancels.",
            )
            .target(key.id.clone())
            .field(FormField::check("Delete key material", false))
            .field(FormField::check("Update policy", true))
            .field(FormField::check("Import key material", true)),
        );
    }

    pub(super) fn submit_sync(&self, form: &Form, shell: &mut Shell) {
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
            shell.notice = Some("Nothing to do: check at least one box.".into());
            return;
        }
        let mut effect = format!("Synchronise key {key} with AWS: {}.", parts.join("; then "));
        if delete_material && !import_material {
            effect.push_str(" The key stays without material in AWS until it is imported again.");
        }
        effect.push_str(" It runs as a job.");
        shell.ask(
            format!("Synchronise key {key}?"),
            effect,
            Request::KeySync {
                key,
                delete_material,
                update_policy,
                import_material,
            },
        );
    }

    /// The answer to one of these actions; false for any other answer.
    pub(super) fn action_answered(&mut self, reply: &Reply, shell: &mut Shell) -> bool {
        match reply {
            Reply::GroupTest(report) => {
                shell.notice = None;
                shell.info = Some(test_info(report));
            }
            Reply::GroupRotate(JobStarted { job: id }) | Reply::KeySync(JobStarted { job: id }) => {
                let what = if matches!(reply, Reply::GroupRotate(_)) {
                    "The rotation"
                } else {
                    "The synchronisation"
                };
                shell.confirm = Some(Confirm {
                    title: format!("Job {id} started"),
                    effect: format!("{what} is job {id}. Open its log now (Jobs screen)?"),
                    then: Confirmable::Show {
                        screen: ScreenId::of::<Jobs>(),
                        item: *id,
                    },
                });
                shell.send_once(Request::JobList);
            }
            Reply::GroupRemove(removed) => {
                shell.notice = Some(format!("Removed group {}.", removed.removed));
                Self::load(shell);
            }
            _ => return false,
        }
        true
    }
}

/// `group_test` as a dialog: Connected or Not connected, the endpoint, each check.
fn test_info(report: &GroupTestReport) -> Info {
    let connected = report.connection == Connection::Connected;
    let mut lines = vec![
        ("Connection".to_string(), report.connection.to_string()),
        ("Endpoint".to_string(), report.endpoint.clone()),
    ];
    for check in &report.checks {
        let verdict = if check.ok { "ok" } else { "FAILED" };
        lines.push((
            check.permission.clone(),
            format!("{verdict}: {}", check.detail),
        ));
    }
    Info {
        title: format!("Test of group {}", report.group),
        lines,
        scroll: 0,
        bad: !connected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;
    use crate::app::dialogs::MENU;
    use crate::app::tests::{dual, job, key, notice, ok, ok_as, p, sending, sent};
    use crate::fixtures;
    use crate::screens::keydb::TREE;
    use crate::screens::keydb::tests::keydb;
    use crossterm::event::KeyCode;
    use keyward_proto::JobState;
    use keyward_proto::Op;

    fn jobs(app: &App) -> &Jobs {
        app.screen::<Jobs>().expect("the jobs screen")
    }

    fn menu_keys(app: &App) -> Vec<char> {
        let menu = app.shell.menu.as_ref().expect("a menu");
        menu.items.iter().map(|i| i.0).collect()
    }

    fn show_job(item: u64) -> Confirmable {
        Confirmable::Show {
            screen: ScreenId::of::<Jobs>(),
            item,
        }
    }

    #[test]
    fn force_rotate_names_the_alias_and_offers_the_job() {
        let mut app = dual();
        keydb(&mut app);
        assert!(key(&mut app, KeyCode::Char('R')).is_empty(), "asks first");
        let confirm = app.shell.confirm.clone().unwrap();
        assert_eq!(
            confirm.effect,
            "Force rotate group payments: a new key is generated and alias/payments moves to it; the previous key stays enabled. It runs as a job."
        );
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [sending(
                p(Op::GroupRotate),
                Request::GroupRotate {
                    name: "payments".into()
                }
            )]
        );
        let effects = ok(&mut app, Reply::GroupRotate(JobStarted { job: 12 }));
        assert_eq!(sent(&effects), [p(Op::JobList)]);
        let offer = app.shell.confirm.clone().unwrap();
        assert_eq!(offer.then, show_job(12));
        assert!(offer.effect.contains("job 12"));
        let effects = key(&mut app, KeyCode::Enter);
        assert!(app.showing::<Jobs>());
        assert_eq!(jobs(&app).log.as_ref().map(|l| l.id), Some(12));
        assert_eq!(
            sent(&effects),
            [p(Op::JobLog).tag(12), p(Op::JobShow).tag(12)],
            "the job list is already on its way"
        );
        ok_as(
            &mut app,
            p(Op::JobShow).tag(12),
            Reply::JobShow(job(12, JobState::Running)),
        );
        assert!(jobs(&app).log.as_ref().unwrap().job.is_some());
        key(&mut app, KeyCode::Esc);
        assert!(app.showing::<Jobs>());
    }

    #[test]
    fn a_key_row_rotates_its_group_and_n_keeps_the_screen() {
        let mut app = dual();
        keydb(&mut app);
        key(&mut app, KeyCode::Char('G'));
        key(&mut app, KeyCode::Char('R'));
        assert!(
            app.shell
                .confirm
                .as_ref()
                .unwrap()
                .effect
                .contains("group billing")
        );
        key(&mut app, KeyCode::Char('n'));
        assert!(app.shell.confirm.is_none());
        // D removes groups only.
        key(&mut app, KeyCode::Char('D'));
        assert!(app.shell.confirm.is_none());
        assert!(notice(&app).starts_with("Select a group"));
        key(&mut app, KeyCode::Char('k'));
        key(&mut app, KeyCode::Char('D'));
        let confirm = app.shell.confirm.clone().unwrap();
        assert!(
            confirm
                .effect
                .contains("it holds 1 key, so the daemon refuses")
        );
        key(&mut app, KeyCode::Char('y'));
        let effects = ok(
            &mut app,
            Reply::GroupRemove(keyward_proto::Removed {
                removed: "billing".into(),
            }),
        );
        assert_eq!(
            sent(&effects),
            [p(Op::GroupList), p(Op::KeyList), p(Op::ScheduleList)]
        );
        assert_eq!(app.shell.notice.as_deref(), Some("Removed group billing."));
    }

    #[test]
    fn the_test_dialog_shows_each_check() {
        let mut app = dual();
        keydb(&mut app);
        assert_eq!(
            key(&mut app, KeyCode::Char('t')),
            [sending(
                p(Op::GroupTest),
                Request::GroupTest {
                    name: "payments".into()
                }
            )]
        );
        ok(
            &mut app,
            Reply::GroupTest(fixtures::group_test(
                "payments",
                Connection::NotConnected,
                &[("kms:ListAliases", false, "AccessDenied")],
            )),
        );
        let info = app.shell.info.clone().unwrap();
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
        assert!(app.shell.form.is_none(), "s works on a key row");
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Char('s'));
        let form = app.shell.form.as_ref().unwrap();
        assert_eq!(form.target, "aa01");
        assert!(!form.checked(0) && form.checked(1) && form.checked(2));
        key(&mut app, KeyCode::Char(' ')); // delete material: on
        key(&mut app, KeyCode::Tab);
        key(&mut app, KeyCode::Char(' ')); // update policy: off
        key(&mut app, KeyCode::Enter);
        key(&mut app, KeyCode::Enter);
        let confirm = app.shell.confirm.clone().unwrap();
        assert!(
            confirm
                .effect
                .starts_with("Synchronise key aa01 with AWS: delete its key material")
        );
        assert!(!confirm.effect.contains("policy"));
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [sending(
                p(Op::KeySync),
                Request::KeySync {
                    key: "aa01".into(),
                    delete_material: true,
                    update_policy: false,
                    import_material: true,
                }
            )]
        );
        ok(&mut app, Reply::KeySync(JobStarted { job: 13 }));
        assert_eq!(app.shell.confirm.as_ref().unwrap().then, show_job(13));
        key(&mut app, KeyCode::Char('n'));
        assert!(app.showing::<KeyDb>());
        // Nothing checked: nothing to confirm.
        key(&mut app, KeyCode::Char('s'));
        key(&mut app, KeyCode::Tab);
        key(&mut app, KeyCode::Char(' '));
        key(&mut app, KeyCode::Tab);
        key(&mut app, KeyCode::Char(' '));
        key(&mut app, KeyCode::Enter);
        assert!(app.shell.confirm.is_none());
        assert!(notice(&app).starts_with("Nothing to do"));
    }

    #[test]
    fn the_context_menu_lists_the_rows_actions() {
        let mut app = dual();
        keydb(&mut app);
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.context(), &MENU);
        let keys = menu_keys(&app);
        assert_eq!(keys, ['e', 't', 'R', 'D', ' ']);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Enter);
        assert!(app.shell.menu.is_none());
        assert!(
            app.shell
                .confirm
                .as_ref()
                .unwrap()
                .title
                .starts_with("Force rotate payments")
        );
        key(&mut app, KeyCode::Esc);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Char('m'));
        let keys = menu_keys(&app);
        assert_eq!(keys, ['s', 't', 'R']);
        // The action's key picks it at once.
        let effects = key(&mut app, KeyCode::Char('t'));
        assert_eq!(sent(&effects), [p(Op::GroupTest)]);
        assert!(app.shell.menu.is_none());
        key(&mut app, KeyCode::Char('m'));
        key(&mut app, KeyCode::Esc);
        assert!(app.shell.menu.is_none());
        assert_eq!(app.context(), &TREE);
    }
}
