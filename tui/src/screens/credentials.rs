//! Credentials: the AWS key pairs the appliance uses to reach KMS. Listed without the secret
//! (the access key id masked but for its last 4, when created and last used, the groups that
//! use it); imported from the CSV file the AWS console gives out (a path on the appliance),
//! added by hand (the secret typed into a masked field and moved into the request), or
//! removed. Each change goes through a confirm dialog.

use keyward_proto::{CredentialView, Op, Reply, Request};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row};

use super::{List, Screen, Tab};
use crate::app::{Purpose, Shell};
use crate::input::{Form, FormField, FormKind};
use crate::keys::{Action, Keymap, MOVE, b, ch, refresh};
use crate::theme::Theme;
use crate::ui::{note, pane, short_time, table};

/// The longest credential name the forms take.
const NAME_MAX: usize = 64;
/// The longest path to a CSV file.
const PATH_MAX: usize = 1024;
/// AWS access key ids are 16 to 128 characters.
const ACCESS_KEY_ID_MAX: usize = 128;
/// The longest secret access key the form takes (AWS uses 40); reserved once.
const SECRET_MAX: usize = 128;

const IMPORT: FormKind = FormKind("credential import");
const ADD: FormKind = FormKind("credential add");

pub const CREDENTIALS: Keymap = Keymap::screen(
    "credentials",
    "Credentials",
    &[
        b(
            MOVE,
            "move",
            "Select a credential (PgUp/PgDn, g/G: first/last)",
        ),
        b(
            &[&[ch('i', Action::Import)]],
            "import",
            "Import from an AWS CSV file: name and a path on the appliance",
        ),
        b(
            &[&[ch('a', Action::Add)]],
            "add",
            "Add by hand: name, access key id, secret access key (masked)",
        ),
        b(
            &[&[ch('D', Action::Remove)]],
            "remove",
            "Remove the selected credential (asks first; refused while groups use it)",
        ),
        refresh("Ask for the credentials again"),
    ],
);

#[derive(Debug, Default)]
pub struct Credentials {
    pub stored: List<CredentialView>,
}

impl Credentials {
    fn ask_remove(&self, shell: &mut Shell) {
        let Some(credential) = self.stored.selected() else {
            shell.notice = Some("No credential is selected.".into());
            return;
        };
        let name = credential.name.clone();
        let effect = if credential.groups.is_empty() {
            format!("Remove credential {name}: it is deleted from the appliance; no group uses it.")
        } else {
            format!(
                "Remove credential {name}: groups using it ({}) could no longer reach AWS, so the daemon refuses until they use another credential.",
                credential.groups.join(", ")
            )
        };
        shell.ask(
            format!("Remove credential {name}?"),
            effect,
            Request::CredentialRemove { name },
        );
    }
}

impl Screen for Credentials {
    fn tab(&self) -> Tab {
        Tab {
            name: "Credentials",
            short: "Creds",
        }
    }

    fn keymap(&self) -> &'static Keymap {
        &CREDENTIALS
    }

    fn refresh(&mut self, shell: &mut Shell) {
        shell.send_once(Request::CredentialList);
    }

    fn on_action(&mut self, action: Action, shell: &mut Shell) {
        if self.stored.moved(action) {
            return;
        }
        match action {
            Action::Import => shell.open_form(
                Form::new(
                    IMPORT,
                    "Import an AWS credential",
                    "Path: the CSV file from the AWS console, on the appliance (a USB stick). Enter on Path asks to confirm.",
                )
                .field(FormField::text("Name", NAME_MAX))
                .field(FormField::text("Path", PATH_MAX)),
            ),
            Action::Add => shell.open_form(
                Form::new(
                    ADD,
                    "Add an AWS credential",
                    "The secret is masked and wiped once sent or cancelled. Enter on the last field asks to confirm.",
                )
                .field(FormField::text("Name", NAME_MAX))
                .field(FormField::text("Access key id", ACCESS_KEY_ID_MAX))
                .field(FormField::secret("Secret access key", SECRET_MAX)),
            ),
            Action::Remove => self.ask_remove(shell),
            _ => {}
        }
    }

    fn submit(&mut self, form: &mut Form, shell: &mut Shell) {
        if form.kind == IMPORT {
            let (name, path) = (form.value(0), form.value(1));
            shell.ask(
                format!("Import credential {name}?"),
                format!(
                    "Import credential {name} from {path}: the daemon reads the AWS key pair from that CSV file and stores it; the secret is never shown again."
                ),
                Request::CredentialImport { name, path },
            );
            return;
        }
        // The secret is moved out of the form (wiping its field) into the request the confirm
        // dialog holds; cancelling drops it, and `Password` zeroizes on drop.
        let (name, access_key_id) = (form.value(0), form.value(1));
        let secret_access_key = form.take_password(2);
        shell.ask(
            format!("Add credential {name}?"),
            format!(
                "Add credential {name} with access key id {}: the daemon stores the key pair; the secret is never shown again.",
                mask(&access_key_id)
            ),
            Request::CredentialAdd {
                name,
                access_key_id,
                secret_access_key,
            },
        );
    }

    fn on_reply(&mut self, _purpose: Purpose, reply: &Reply, shell: &mut Shell) {
        match reply {
            Reply::CredentialList(list) => {
                self.stored.arrived(list);
                return;
            }
            Reply::CredentialImport(view) | Reply::CredentialAdd(view) => {
                shell.notice = Some(format!(
                    "Credential {} stored (access key id {}).",
                    view.name,
                    short_mask(&view.access_key_id)
                ));
            }
            Reply::CredentialRemove(removed) => {
                shell.notice = Some(format!("Removed {}.", removed.removed));
            }
            _ => return,
        }
        shell.send_once(Request::CredentialList);
    }

    fn logged_out(&mut self) {
        *self = Self::default();
    }

    fn draw(&self, shell: &Shell, theme: Theme, frame: &mut Frame, area: Rect) {
        let stored = &self.stored;
        let block = pane(
            format!("AWS credentials ({})", stored.items.len()),
            true,
            theme,
        );
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if stored.items.is_empty() {
            let text = stored.empty_text(shell, Op::CredentialList, ["Asking the daemon for the credentials …", "No credentials yet. i imports the CSV file the AWS console gives out; a adds one by hand.", "No list yet: press r to ask the daemon (it needs an administrator)."]);
            note(text, theme, frame, inner);
            return;
        }
        let rows = stored.items.iter().map(|c| {
            let last_used = if c.last_used == "never" {
                Span::styled("never", theme.dim())
            } else {
                Span::raw(short_time(&c.last_used))
            };
            let groups = if c.groups.is_empty() {
                Span::styled("none", theme.dim())
            } else {
                Span::raw(c.groups.join(", "))
            };
            Row::new(vec![
                Cell::from(c.name.clone()),
                Cell::from(short_mask(&c.access_key_id)),
                Cell::from(short_time(&c.created)),
                Cell::from(last_used),
                Cell::from(groups),
            ])
        });
        table(
            ["Name", "Key id", "Created", "Last used", "Groups"],
            [
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Length(16),
                Constraint::Length(16),
                Constraint::Min(10),
            ],
            rows,
            Some(stored.selected),
            theme,
            frame,
            inner,
        );
    }
}

/// The way the daemon masks an access key id: `*` but for the last 4 characters.
fn mask(text: &str) -> String {
    let n = text.chars().count();
    let keep = n.min(4);
    let mut out = "*".repeat(n - keep);
    out.extend(text.chars().skip(n - keep));
    out
}

/// A masked access key id shortened for a narrow column: at most four `*` before the rest.
pub fn short_mask(masked: &str) -> String {
    let stars = masked.chars().take_while(|c| *c == '*').count();
    if stars > 4 {
        format!("****{}", masked.chars().skip(stars).collect::<String>())
    } else {
        masked.to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::app::ErrorLine;
    use crate::app::dialogs::FORM;
    use crate::app::tests::{dual, key, ok, p, refused, sending, sent, typed};
    use crate::fixtures;
    use crate::keys::tests::press;
    use crossterm::event::KeyCode;
    use keyward_proto::{ErrorCode, Password, Removed};

    #[test]
    fn masks_keep_the_last_four() {
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "****************MPLE");
        assert_eq!(mask("abc"), "abc");
        assert_eq!(short_mask("****************MPLE"), "****MPLE");
        assert_eq!(short_mask("**ab"), "**ab");
    }

    pub(crate) fn credentials() -> Vec<CredentialView> {
        vec![
            fixtures::credential(
                "prod",
                "****************MPLE",
                "never",
                &["payments", "billing"],
            ),
            fixtures::credential("spare", "****************WXYZ", "never", &[]),
        ]
    }

    #[test]
    fn adding_a_credential_moves_the_secret_into_the_request_only() {
        let mut app = dual();
        assert_eq!(
            sent(&key(&mut app, KeyCode::Char('5'))),
            [p(Op::CredentialList)]
        );
        ok(&mut app, Reply::CredentialList(credentials()));
        key(&mut app, KeyCode::Char('a'));
        assert_eq!(app.context(), &FORM);
        typed(&mut app, "dev");
        key(&mut app, KeyCode::Tab);
        typed(&mut app, "AKIAIOSFODNN7EXAMPLE");
        key(&mut app, KeyCode::Tab);
        typed(&mut app, "wJalrXUtnFEMI/K7MDENG");
        {
            let form = app.shell.form.as_ref().expect("the form");
            assert_eq!(form.fields[2].shown(), "*".repeat(21));
            assert_eq!(form.value(2), "", "the secret is not read as text");
        }
        assert!(key(&mut app, KeyCode::Enter).is_empty(), "asks first");
        assert!(app.shell.form.is_none(), "the form (and its field) is gone");
        let confirm = app.shell.confirm.clone().expect("a confirm");
        assert!(
            confirm
                .effect
                .contains("Add credential dev with access key id ****************MPLE")
        );
        assert!(!confirm.effect.contains("wJalr"));
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [sending(
                p(Op::CredentialAdd),
                Request::CredentialAdd {
                    name: "dev".into(),
                    access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                    secret_access_key: Password::new("wJalrXUtnFEMI/K7MDENG"),
                }
            )]
        );
        let effects = ok(
            &mut app,
            Reply::CredentialAdd(fixtures::credential(
                "dev",
                "****************MPLE",
                "never",
                &[],
            )),
        );
        assert_eq!(sent(&effects), [p(Op::CredentialList)]);
        assert_eq!(
            app.shell.notice.as_deref(),
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
        assert!(app.shell.confirm.as_ref().is_some_and(|c| {
            c.effect
                .starts_with("Import credential prod from /media/usb/prod_accessKeys.csv")
        }));
        assert_eq!(
            key(&mut app, KeyCode::Enter),
            [sending(
                p(Op::CredentialImport),
                Request::CredentialImport {
                    name: "prod".into(),
                    path: "/media/usb/prod_accessKeys.csv".into(),
                }
            )]
        );
        // A refusal is shown with its code; the list is not asked again.
        let effects = refused(
            &mut app,
            p(Op::CredentialImport),
            ErrorCode::Invalid,
            "no such file",
        );
        assert!(effects.is_empty());
        assert_eq!(
            app.shell.error.as_ref().map(ErrorLine::text).as_deref(),
            Some("invalid: no such file")
        );
    }

    #[test]
    fn removing_a_credential_names_the_groups_that_use_it() {
        let mut app = dual();
        key(&mut app, KeyCode::Char('5'));
        ok(&mut app, Reply::CredentialList(credentials()));
        key(&mut app, KeyCode::Char('D'));
        let effect = app.shell.confirm.clone().expect("a confirm").effect;
        assert!(
            effect.starts_with("Remove credential prod: groups using it (payments, billing) could no longer reach AWS"),
            "{effect}"
        );
        key(&mut app, KeyCode::Char('n'));
        key(&mut app, KeyCode::Char('j'));
        key(&mut app, KeyCode::Char('D'));
        assert!(
            app.shell
                .confirm
                .as_ref()
                .is_some_and(|c| c.effect.contains("no group uses it"))
        );
        assert_eq!(
            key(&mut app, KeyCode::Char('y')),
            [sending(
                p(Op::CredentialRemove),
                Request::CredentialRemove {
                    name: "spare".into()
                }
            )]
        );
        let effects = ok(
            &mut app,
            Reply::CredentialRemove(Removed {
                removed: "spare".into(),
            }),
        );
        assert_eq!(sent(&effects), [p(Op::CredentialList)]);
        assert_eq!(app.shell.notice.as_deref(), Some("Removed spare."));
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
        assert!(app.shell.form.is_none() && app.shell.confirm.is_none());
        assert_eq!(app.context(), &CREDENTIALS);
    }

    #[test]
    fn the_credentials_keys() {
        let credentials = |c| CREDENTIALS.action(press(KeyCode::Char(c)));
        assert_eq!(credentials('i'), Some(Action::Import));
        assert_eq!(credentials('a'), Some(Action::Add));
        assert_eq!(credentials('D'), Some(Action::Remove));
        assert_eq!(credentials('r'), Some(Action::Refresh));
        assert_eq!(credentials('d'), None, "removing needs the capital D");
        assert_eq!(credentials('l'), None, "credentials are not locked");
        assert_eq!(credentials('5'), Some(Action::Goto(5)));
        assert_eq!(
            CREDENTIALS.action(press(KeyCode::Enter)),
            Some(Action::Open)
        );
        assert_eq!(
            crate::screens::users::USERS.action(press(KeyCode::Char('i'))),
            None
        );
        // In the form the same letters are text.
        assert_eq!(
            FORM.action(press(KeyCode::Char('i'))),
            Some(Action::Input('i'))
        );
    }
}
