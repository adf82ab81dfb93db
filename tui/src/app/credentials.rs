//! Credentials: the AWS key pairs the appliance uses to reach KMS. Listed without the secret
//! (the access key id masked but for its last 4); imported from the CSV file the AWS console
//! gives out (a path on the appliance), added by hand (the secret typed into a masked field
//! and moved into the request), or removed. Each change goes through a confirm dialog.

use keyward_proto::{CredentialView, Request};

use super::{App, Effect, Purpose};
use crate::input::{Form, FormField, FormKind};
use crate::keys::Action;

/// The longest credential name the forms take.
const NAME_MAX: usize = 64;
/// The longest path to a CSV file.
const PATH_MAX: usize = 1024;
/// AWS access key ids are 16 to 128 characters.
const ACCESS_KEY_ID_MAX: usize = 128;
/// The longest secret access key the form takes (AWS uses 40); reserved once.
const SECRET_MAX: usize = 128;

#[derive(Debug, Default)]
pub struct Credentials {
    pub list: Vec<CredentialView>,
    pub loaded: bool,
    pub selected: usize,
}

impl Credentials {
    pub fn selected_credential(&self) -> Option<&CredentialView> {
        self.list.get(self.selected)
    }
}

impl App {
    pub(super) fn credentials_action(&mut self, action: Action) {
        let len = self.credentials.list.len();
        if super::move_selection(&mut self.credentials.selected, len, action) {
            return;
        }
        match action {
            Action::Import => {
                self.form = Some(
                    Form::new(
                        FormKind::CredentialImport,
                        "Import an AWS credential",
                        "Path: the CSV file from the AWS console, on the appliance (a USB stick). Enter on Path asks to confirm.",
                    )
                    .field(FormField::text("Name", NAME_MAX))
                    .field(FormField::text("Path", PATH_MAX)),
                );
            }
            Action::Add => {
                self.form = Some(
                    Form::new(
                        FormKind::CredentialAdd,
                        "Add an AWS credential",
                        "The secret is masked and wiped once sent or cancelled. Enter on the last field asks to confirm.",
                    )
                    .field(FormField::text("Name", NAME_MAX))
                    .field(FormField::text("Access key id", ACCESS_KEY_ID_MAX))
                    .field(FormField::secret("Secret access key", SECRET_MAX)),
                );
            }
            Action::Remove => {
                let Some(credential) = self.credentials.selected_credential() else {
                    self.notice = Some("No credential is selected.".into());
                    return;
                };
                let name = credential.name.clone();
                let effect = if credential.groups.is_empty() {
                    format!(
                        "Remove credential {name}: it is deleted from the appliance; no group uses it."
                    )
                } else {
                    format!(
                        "Remove credential {name}: groups using it ({}) could no longer reach AWS, so the daemon refuses until they use another credential.",
                        credential.groups.join(", ")
                    )
                };
                self.ask(
                    format!("Remove credential {name}?"),
                    effect,
                    Purpose::CredentialRemove,
                    Request::CredentialRemove { name },
                );
            }
            _ => {}
        }
    }

    pub(super) fn submit_credential_import(&mut self, form: &Form) {
        let (name, path) = (form.value(0), form.value(1));
        self.ask(
            format!("Import credential {name}?"),
            format!(
                "Import credential {name} from {path}: the daemon reads the AWS key pair from that CSV file and stores it; the secret is never shown again."
            ),
            Purpose::CredentialImport,
            Request::CredentialImport { name, path },
        );
    }

    /// The secret is moved out of the form (wiping its field) into the request the confirm
    /// dialog holds; cancelling drops it, and `Password` zeroizes on drop.
    pub(super) fn submit_credential_add(&mut self, form: &mut Form) {
        let (name, access_key_id) = (form.value(0), form.value(1));
        let secret_access_key = form.take_password(2);
        self.ask(
            format!("Add credential {name}?"),
            format!(
                "Add credential {name} with access key id {}: the daemon stores the key pair; the secret is never shown again.",
                mask(&access_key_id)
            ),
            Purpose::CredentialAdd,
            Request::CredentialAdd {
                name,
                access_key_id,
                secret_access_key,
            },
        );
    }

    pub(super) fn credential_reply(
        &mut self,
        purpose: Purpose,
        data: serde_json::Value,
        out: &mut Vec<Effect>,
    ) {
        match purpose {
            Purpose::CredentialList => {
                if let Some(list) = self.parse::<Vec<CredentialView>>(purpose, data) {
                    self.credentials.list = list;
                    self.credentials.loaded = true;
                    self.credentials.selected = self
                        .credentials
                        .selected
                        .min(self.credentials.list.len().saturating_sub(1));
                    self.credentials_for_editor();
                }
                return;
            }
            Purpose::CredentialImport | Purpose::CredentialAdd => {
                if let Some(view) = self.parse::<CredentialView>(purpose, data) {
                    self.notice = Some(format!(
                        "Credential {} stored (access key id {}).",
                        view.name,
                        short_mask(&view.access_key_id)
                    ));
                }
            }
            Purpose::CredentialRemove => {
                let name = data
                    .get("removed")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("the credential");
                self.notice = Some(format!("Removed {name}."));
            }
            _ => return,
        }
        self.send_once(Purpose::CredentialList, Request::CredentialList, out);
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
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_last_four() {
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "****************MPLE");
        assert_eq!(mask("abc"), "abc");
        assert_eq!(short_mask("****************MPLE"), "****MPLE");
        assert_eq!(short_mask("**ab"), "**ab");
    }
}
