//! Credentials, key groups and the customer-key inventory: the records the KMS jobs work from.
//! Every change is audited and runs under dual control (checked in `api::authz`). A bad input
//! is refused before anything is written.

use std::collections::BTreeMap;
use std::io::Read;

use keyward_proto::{CredentialView, GroupView, KeyView};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::Appliance;
use crate::cloud::{AccessKey, Target};
use crate::domain::audit::Actors;
use crate::domain::credentials::{
    Credential, MAX_CSV, parse_access_key_csv, validate_access_key_id, validate_secret,
};
use crate::domain::groups::{self, FieldChange, Group, parse_fields, validate_policy};
use crate::domain::keys::{KeyId, KeyPurpose, KeyRecord, KeyState};
use crate::domain::schedule::{Expiry, expiry};
use crate::domain::{format_ms, now_ms};
use crate::error::{Error, Result};
use crate::store::settings::STORAGE_KEY;

/// Reads a small file named by an operator (a credentials CSV, a policy). Regular files only,
/// at most `limit` bytes; the buffer is zeroized when dropped.
fn read_small_file(what: &str, path: &str, limit: usize) -> Result<Zeroizing<Vec<u8>>> {
    let file =
        std::fs::File::open(path).map_err(|e| Error::Invalid(format!("{what} {path}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::Invalid(format!("{what} {path}: {e}")))?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!("{what} {path}: not a regular file")));
    }
    let mut buf = Zeroizing::new(Vec::new());
    file.take(u64::try_from(limit).unwrap_or(u64::MAX) + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::Invalid(format!("{what} {path}: {e}")))?;
    if buf.len() > limit {
        return Err(Error::Invalid(format!(
            "{what} {path} is larger than {limit} bytes; is it the right file?"
        )));
    }
    Ok(buf)
}

/// A key for people to read; `warning` is how long before expiry a key counts as expiring.
pub(crate) fn key_view(key: &KeyRecord, warning: std::time::Duration) -> KeyView {
    let cloud = key.cloud.clone().unwrap_or_default();
    let expires_soon = cloud.state != KeyState::Expired
        && !matches!(expiry(cloud.valid_to_ms, now_ms(), warning), Expiry::Fine);
    KeyView {
        expires_soon,
        id: key.id.to_string(),
        group: cloud.group,
        state: cloud.state,
        fingerprint: key.fingerprint.to_string(),
        aws_key_id: cloud.aws_key_id,
        aws_arn: cloud.aws_arn,
        aws_key_state: cloud.aws_key_state.map(keyward_proto::SeenState::live),
        alias: cloud.alias,
        created: format_ms(key.created_ms),
        valid_to: cloud
            .valid_to_ms
            .map_or_else(|| "forever".into(), format_ms),
    }
}

impl Appliance {
    fn lock_config_changes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.config_changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn storage_key(&self) -> Result<KeyId> {
        self.store
            .get_key_setting(STORAGE_KEY)?
            .ok_or_else(|| Error::Internal("the storage key setting is missing".into()))
    }

    // ---- credentials ----

    pub fn credential_import(&self, by: &Actors, name: &str, path: &str) -> Result<CredentialView> {
        groups::validate_name(name).map_err(|e| Error::Invalid(format!("credential {e}")))?;
        let raw = read_small_file("credentials file", path, MAX_CSV)?;
        let (id, secret) = parse_access_key_csv(&raw)
            .map_err(|e| Error::Invalid(format!("credentials file {path}: {e}")))?;
        self.store_credential(by, "credential.import", name, id, &secret)
    }

    pub fn credential_add(
        &self,
        by: &Actors,
        name: &str,
        access_key_id: &str,
        secret: &SecretString,
    ) -> Result<CredentialView> {
        groups::validate_name(name).map_err(|e| Error::Invalid(format!("credential {e}")))?;
        validate_access_key_id(access_key_id).map_err(Error::Invalid)?;
        validate_secret(secret).map_err(Error::Invalid)?;
        self.store_credential(by, "credential.add", name, access_key_id.to_owned(), secret)
    }

    fn store_credential(
        &self,
        by: &Actors,
        action: &str,
        name: &str,
        access_key_id: String,
        secret: &SecretString,
    ) -> Result<CredentialView> {
        let _guard = self.lock_config_changes();
        if self.store.get_credential(name)?.is_some() {
            return Err(Error::Invalid(format!(
                "credential {name} exists; 'credential remove {name}' first, or choose another name"
            )));
        }
        self.audited(by, action, name, || {
            let sealed = self.hsm.encrypt(
                &self.storage_key()?,
                secret.expose_secret().as_bytes(),
                &Credential::aad(name),
            )?;
            let credential = Credential {
                name: name.to_owned(),
                access_key_id,
                sealed_secret: hex::encode(sealed),
                created_ms: now_ms(),
                last_used_ms: None,
            };
            self.store.put_credential(&credential)?;
            self.store.flush()?;
            self.credential_view(&credential)
        })
    }

    fn credential_view(&self, c: &Credential) -> Result<CredentialView> {
        Ok(CredentialView {
            name: c.name.clone(),
            access_key_id: c.masked_access_key_id(),
            created: format_ms(c.created_ms),
            last_used: c.last_used_ms.map_or_else(|| "never".into(), format_ms),
            groups: self
                .store
                .list_groups()?
                .into_iter()
                .filter(|g| g.credential == c.name)
                .map(|g| g.name)
                .collect(),
        })
    }

    pub fn credential_list(&self) -> Result<Vec<CredentialView>> {
        self.store
            .list_credentials()?
            .iter()
            .map(|c| self.credential_view(c))
            .collect()
    }

    pub fn credential_remove(&self, by: &Actors, name: &str) -> Result<()> {
        let _guard = self.lock_config_changes();
        let credential = self.get_credential(name)?;
        let users = self.credential_view(&credential)?.groups;
        if !users.is_empty() {
            return Err(Error::Invalid(format!(
                "credential {name} is used by group {}; point the group at another credential first",
                users.join(", ")
            )));
        }
        self.audited(by, "credential.remove", name, || {
            self.store.remove_credential(name)?;
            self.store.flush()?;
            Ok(())
        })
    }

    pub fn get_credential(&self, name: &str) -> Result<Credential> {
        self.store.get_credential(name)?.ok_or_else(|| {
            Error::NotFound(format!(
                "no credential {name}; 'credential list' shows them, 'credential import {name} FILE' adds one"
            ))
        })
    }

    /// The group's AWS target and its access key, decrypted in the HSM for this one use.
    /// Records the use.
    pub fn cloud_access(&self, group: &Group) -> Result<(Target, AccessKey)> {
        let mut credential = self.get_credential(&group.credential)?;
        let sealed = hex::decode(&credential.sealed_secret).map_err(|_| {
            Error::Internal(format!(
                "credential {} is corrupt in the database",
                credential.name
            ))
        })?;
        let plain = self.hsm.decrypt(
            &self.storage_key()?,
            &sealed,
            &Credential::aad(&credential.name),
        )?;
        let secret = std::str::from_utf8(plain.expose_secret())
            .map(|s| SecretString::from(s.to_owned()))
            .map_err(|_| {
                Error::Internal(format!(
                    "credential {} does not decrypt to text",
                    credential.name
                ))
            })?;
        credential.last_used_ms = Some(now_ms());
        self.store.put_credential(&credential)?;
        Ok((
            Target {
                credential: credential.name.clone(),
                region: group.region.clone(),
                endpoint: group.endpoint.clone(),
            },
            AccessKey {
                access_key_id: credential.access_key_id,
                secret_access_key: secret,
            },
        ))
    }

    // ---- groups ----

    pub fn get_group(&self, name: &str) -> Result<Group> {
        self.store.get_group(name)?.ok_or_else(|| {
            Error::NotFound(format!(
                "no key group {name}; 'group list' shows them, 'group create {name} …' makes one"
            ))
        })
    }

    /// Parses and checks field changes, reading a policy file if one is named. Nothing is
    /// written.
    fn prepared_changes(
        &self,
        fields: &BTreeMap<String, String>,
    ) -> Result<Vec<(FieldChange, Option<String>)>> {
        let changes = parse_fields(fields).map_err(Error::Invalid)?;
        changes
            .into_iter()
            .map(|change| {
                let policy = match &change {
                    FieldChange::PolicyFile(Some(path)) => {
                        let raw = read_small_file("policy_file", path, 32 * 1024)?;
                        let text = std::str::from_utf8(&raw).map_err(|_| {
                            Error::Invalid(format!("policy_file {path}: not UTF-8 text"))
                        })?;
                        Some(
                            validate_policy(text)
                                .map_err(|e| Error::Invalid(format!("policy_file {path}: {e}")))?,
                        )
                    }
                    FieldChange::Credential(name) => {
                        self.get_credential(name)?;
                        None
                    }
                    _ => None,
                };
                Ok((change, policy))
            })
            .collect()
    }

    pub fn group_create(
        &self,
        by: &Actors,
        name: &str,
        fields: &BTreeMap<String, String>,
    ) -> Result<GroupView> {
        groups::validate_name(name).map_err(|e| Error::Invalid(format!("group {e}")))?;
        let _guard = self.lock_config_changes();
        if self.store.get_group(name)?.is_some() {
            return Err(Error::Invalid(format!(
                "key group {name} exists; 'group set {name} …' changes it"
            )));
        }
        let mut group = Group::empty(name, now_ms());
        for (change, policy) in self.prepared_changes(fields)? {
            group.apply(change, policy);
        }
        group.check_complete().map_err(Error::Invalid)?;
        self.check_alias_unique(&group)?;
        self.audited(by, "group.create", name, || {
            self.store.put_group(&group)?;
            self.store.flush()?;
            self.group_view(&group)
        })
    }

    pub fn group_set(
        &self,
        by: &Actors,
        name: &str,
        fields: &BTreeMap<String, String>,
    ) -> Result<GroupView> {
        let _guard = self.lock_config_changes();
        let mut group = self.get_group(name)?;
        if fields.is_empty() {
            return Err(Error::Invalid(format!(
                "say what to change: 'group set {name} FIELD=VALUE…'"
            )));
        }
        for (change, policy) in self.prepared_changes(fields)? {
            group.apply(change, policy);
        }
        group.check_complete().map_err(Error::Invalid)?;
        self.check_alias_unique(&group)?;
        group.updated_ms = now_ms();
        self.audited(by, "group.set", name, || {
            self.store.put_group(&group)?;
            // A changed group gets a fresh start from the scheduler: no backoff left over from
            // failures under the old fields.
            self.update_schedule(name, |state| {
                state.failures = 0;
                state.retry_at_ms = None;
            })?;
            self.store.flush()?;
            self.group_view(&group)
        })
    }

    /// Two groups moving one alias would fight over it.
    fn check_alias_unique(&self, group: &Group) -> Result<()> {
        if let Some(other) = self.store.list_groups()?.into_iter().find(|g| {
            g.name != group.name
                && g.alias == group.alias
                && g.region == group.region
                && g.endpoint == group.endpoint
                && g.credential == group.credential
        }) {
            return Err(Error::Invalid(format!(
                "alias {} is already the alias of group {}; each group needs its own",
                group.alias, other.name
            )));
        }
        Ok(())
    }

    pub fn group_remove(&self, by: &Actors, name: &str) -> Result<()> {
        let _guard = self.lock_config_changes();
        self.get_group(name)?;
        let keys = self.group_keys(name)?;
        if !keys.is_empty() {
            return Err(Error::Invalid(format!(
                "key group {name} holds {} key(s); a group with keys is not removed, so no key is lost",
                keys.len()
            )));
        }
        if let Some(job) = self.unfinished_job(name)? {
            return Err(Error::Invalid(format!(
                "job {} is working on group {name}; wait for it first",
                job.id
            )));
        }
        self.audited(by, "group.remove", name, || {
            self.store.remove_group(name)?;
            self.store.remove_schedule(name)?;
            self.store.flush()?;
            Ok(())
        })
    }

    pub fn group_view(&self, g: &Group) -> Result<GroupView> {
        let keys = self.group_keys(&g.name)?;
        Ok(GroupView {
            name: g.name.clone(),
            credential: g.credential.clone(),
            region: g.region.clone(),
            endpoint: g.endpoint.clone(),
            alias: g.alias.clone(),
            description: g.description.clone(),
            active_key_id: g.active_key_id.clone(),
            policy_file: g.policy_file.clone(),
            policy: g.policy.clone(),
            disable_previous: g.disable_previous,
            rotate_every: g.rotate_every_text(),
            valid_for: g.valid_for_text(),
            rotation_mode: g.rotation_mode.as_str().into(),
            tags: g.tags.clone(),
            active_key: keys
                .iter()
                .find(|k| {
                    k.cloud
                        .as_ref()
                        .is_some_and(|c| c.state == KeyState::Active)
                })
                .map(|k| k.id.to_string()),
            keys: keys.len(),
            created: format_ms(g.created_ms),
        })
    }

    pub fn group_list(&self) -> Result<Vec<GroupView>> {
        self.store
            .list_groups()?
            .iter()
            .map(|g| self.group_view(g))
            .collect()
    }

    /// The job that is working on a group (a rotation of it, or a sync of one of its keys).
    pub fn unfinished_job(&self, group: &str) -> Result<Option<crate::domain::jobs::Job>> {
        use crate::domain::jobs::JobKind;
        let keys = self.group_keys(group)?;
        Ok(self.store.list_jobs()?.into_iter().find(|j| {
            !j.state.is_done()
                && match &j.kind {
                    JobKind::Rotate { group: g, .. } => g == group,
                    JobKind::Sync { key, .. } => keys.iter().any(|k| k.id == *key),
                }
        }))
    }

    // ---- keys ----

    /// The customer keys of a group, oldest first.
    pub fn group_keys(&self, group: &str) -> Result<Vec<KeyRecord>> {
        let mut keys: Vec<KeyRecord> = self
            .store
            .list_keys()?
            .into_iter()
            .filter(|k| {
                k.purpose == KeyPurpose::Customer
                    && k.cloud.as_ref().is_some_and(|c| c.group == group)
            })
            .collect();
        keys.sort_by_key(|k| k.created_ms);
        Ok(keys)
    }

    /// The group's active key (the one carrying the alias), if any.
    pub fn active_key(&self, group: &str) -> Result<Option<KeyRecord>> {
        Ok(self.group_keys(group)?.into_iter().rev().find(|k| {
            k.cloud
                .as_ref()
                .is_some_and(|c| c.state == KeyState::Active)
        }))
    }

    pub fn key_list(&self, group: Option<&str>) -> Result<Vec<KeyView>> {
        if let Some(g) = group {
            self.get_group(g)?;
        }
        let mut keys: Vec<KeyRecord> = self
            .store
            .list_keys()?
            .into_iter()
            .filter(|k| k.purpose == KeyPurpose::Customer)
            .filter(|k| group.is_none_or(|g| k.cloud.as_ref().is_some_and(|c| c.group == g)))
            .collect();
        keys.sort_by_key(|k| k.created_ms);
        Ok(keys
            .iter()
            .map(|k| key_view(k, self.rotation.expiry_warning))
            .collect())
    }

    /// A customer key by its Keyward id (hex).
    pub fn customer_key(&self, text: &str) -> Result<KeyRecord> {
        let id = KeyId::try_from(text.to_owned()).map_err(Error::Invalid)?;
        match self.store.get_key(&id)? {
            Some(k) if k.purpose == KeyPurpose::Customer && k.cloud.is_some() => Ok(k),
            _ => Err(Error::NotFound(format!(
                "no customer key {text}; 'key list' shows them"
            ))),
        }
    }
}
