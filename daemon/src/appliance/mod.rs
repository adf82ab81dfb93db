//! The appliance core: the store, the HSM and the audit trail, and the operations on them.
//! Blocking by design (sled and PKCS#11 are); the async front ends call in via `api`.
//!
//! Recovery order for anything that spans the HSM and the database (after parsec): create in
//! the HSM, record in the database, and on failure destroy what the HSM made.
//!
//! Sensitive operations go through [`Appliance::audited`]: the attempt is recorded before the
//! operation acts, and its outcome after.

mod audit_ops;
mod cloud_config;
mod firmware;
mod health;
mod settings;
mod users;

pub(crate) use cloud_config::key_view;

use std::sync::{Arc, Mutex};

use keyward_proto::{AuditStatus, HsmStatus, StatusReport, StoreStatus};
use secrecy::SecretString;
use tracing::{error, info, warn};

use crate::audit::AuditTrail;
use crate::config::Config;
use crate::domain::audit::{Actors, AuditEntry, Channel, Outcome};
use crate::domain::keys::{KeyId, KeyPurpose, KeyRecord, KeySource};
use crate::domain::now_ms;
use crate::domain::users::{PasswordHash, Role, User, validate_name, validate_password};
use crate::error::{Error, Result};
use crate::hsm::Hsm;
use crate::store::Store;
use crate::store::settings::{AUDIT_KEY, STORAGE_KEY};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An administrator named on `keywardd init`.
pub struct InitialAdmin {
    pub name: String,
    pub password: SecretString,
}

/// What `init` created, for the operator.
#[derive(Debug)]
pub struct InitReport {
    pub storage_key: KeyRecord,
    pub audit_key: KeyRecord,
    pub admins: Vec<String>,
}

pub struct Appliance {
    pub store: Store,
    pub hsm: Arc<dyn Hsm>,
    pub audit: AuditTrail,
    /// Keys the database holds that the token did not, found at start-up.
    missing_keys: Mutex<Vec<KeyRecord>>,
    /// Torn objects found on the token at start-up, and what became of each (for `status`).
    torn_objects: Mutex<Vec<String>>,
    firmware: Option<crate::config::FirmwareConfig>,
    hardening: Mutex<std::collections::BTreeMap<String, String>>,
    /// Serialises changes that must keep two usable administrators (check, then change).
    user_changes: Mutex<()>,
    /// Serialises credential and group changes (check, then change).
    config_changes: Mutex<()>,
    /// The scheduler's settings (the expiry warning is also used by key views).
    pub rotation: crate::config::RotationConfig,
    /// The HSM fault the health check found, until the HSM is healthy again. While set, the
    /// daemon fails closed: sensitive operations are refused and jobs and the scheduler wait.
    hsm_fault: Mutex<Option<String>>,
    /// Serialises health checks, so a fault is recorded once.
    health: Mutex<()>,
    /// Whether the held fault made it into the audit trail (not when the audit key was gone).
    fault_audited: std::sync::atomic::AtomicBool,
    /// Serialises read-modify-write of key and schedule records (job steps and the scheduler
    /// both update them).
    records: Mutex<()>,
    /// The label of the token that holds the keys (recorded on each key it holds).
    token_label: String,
    /// Failed logins per name and front end (in memory; see `users.rs`).
    logins: users::Logins,
}

/// Checks the first administrators before anything is created.
fn check_admins(admins: &[InitialAdmin]) -> Result<()> {
    if admins.len() < 2 {
        return Err(Error::Invalid(format!(
            "dual control needs at least two administrators; {} given: pass --admin NAME=PASSWORD_FILE twice",
            admins.len()
        )));
    }
    for (i, admin) in admins.iter().enumerate() {
        validate_name(&admin.name).map_err(Error::Invalid)?;
        validate_password(&admin.password)
            .map_err(|e| Error::Invalid(format!("administrator '{}': {e}", admin.name)))?;
        if admins[..i].iter().any(|a| a.name == admin.name) {
            return Err(Error::Invalid(format!(
                "administrator '{}' is named twice; dual control needs two different people",
                admin.name
            )));
        }
    }
    Ok(())
}

fn generate_system_key(hsm: &dyn Hsm, token: &str, purpose: KeyPurpose) -> Result<KeyRecord> {
    let label = format!("keyward:{}", purpose.as_str());
    let key = hsm.generate_key(purpose, &label)?;
    Ok(KeyRecord {
        id: key.id,
        label,
        purpose,
        fingerprint: key.fingerprint,
        created_ms: now_ms(),
        source: KeySource::Hsm,
        tokens: vec![token.to_owned()],
        cloud: None,
    })
}

impl Appliance {
    /// The label of the token that holds the keys.
    pub fn token_label(&self) -> &str {
        &self.token_label
    }

    /// First boot: the HSM storage and audit keys, the database, the first administrators and
    /// the first audit record. Refuses an initialised database and bad administrator input
    /// before creating anything.
    pub fn init(config: &Config, hsm: Arc<dyn Hsm>, admins: &[InitialAdmin]) -> Result<InitReport> {
        check_admins(admins)?;
        create_data_dir(config.data_dir())?;
        let store = Store::open(config.data_dir())?;
        if store.is_initialised()? {
            return Err(Error::AlreadyInitialised(
                store.path().display().to_string(),
            ));
        }
        discard_interrupted_init(&store, hsm.as_ref())?;
        let storage_key =
            generate_system_key(hsm.as_ref(), &config.hsm.token_label, KeyPurpose::Storage)?;
        let audit_key =
            match generate_system_key(hsm.as_ref(), &config.hsm.token_label, KeyPurpose::Audit) {
                Ok(k) => k,
                Err(e) => {
                    let _ = hsm.destroy_key(&storage_key.id);
                    return Err(e);
                }
            };
        let result = Self::init_records(&store, hsm.clone(), admins, &storage_key, &audit_key);
        if let Err(e) = result {
            error!(error = %e, "init failed; destroying the keys it generated");
            let _ = discard_interrupted_init(&store, hsm.as_ref());
            return Err(e);
        }
        Ok(InitReport {
            storage_key,
            audit_key,
            admins: admins.iter().map(|a| a.name.clone()).collect(),
        })
    }

    fn init_records(
        store: &Store,
        hsm: Arc<dyn Hsm>,
        admins: &[InitialAdmin],
        storage_key: &KeyRecord,
        audit_key: &KeyRecord,
    ) -> Result<()> {
        store.put_key(storage_key)?;
        store.put_key(audit_key)?;
        for admin in admins {
            let salt = hsm.random(16)?;
            let user = User::new(
                &admin.name,
                Role::Administrator,
                PasswordHash::derive(&admin.password, &salt),
                false,
                now_ms(),
            );
            store.add_user(&user)?;
        }
        let token = hsm.token_info()?;
        let trail = AuditTrail::open(store.clone(), hsm, audit_key.id)?;
        trail.append(
            AuditEntry::new(
                Channel::Cli,
                "appliance.init",
                "appliance",
                Outcome::Success,
            )
            .actors(admins.iter().map(|a| a.name.clone()))
            .detail("token_label", token.label)
            .detail("token_serial", token.serial)
            .detail(
                "storage_key",
                format!("{} kcv {}", storage_key.id, storage_key.fingerprint),
            )
            .detail(
                "audit_key",
                format!("{} kcv {}", audit_key.id, audit_key.fingerprint),
            )
            .detail("version", VERSION),
        )?;
        // Written last: the database counts as initialised only when everything else is there.
        store.put_key_setting(STORAGE_KEY, &storage_key.id)?;
        store.put_key_setting(AUDIT_KEY, &audit_key.id)?;
        store.flush()?;
        Ok(())
    }

    /// Opens an initialised appliance: reconciles the key database with the HSM, opens the
    /// audit trail (refusing one that does not match its head in the HSM), and records the start.
    pub fn open(config: &Config, hsm: Arc<dyn Hsm>) -> Result<Self> {
        let store = Store::open(config.data_dir())?;
        let not_initialised = || Error::NotInitialised(store.path().display().to_string());
        let audit_key = store
            .get_key_setting(AUDIT_KEY)?
            .ok_or_else(not_initialised)?;
        store
            .get_key_setting(STORAGE_KEY)?
            .ok_or_else(not_initialised)?;

        let missing = reconcile(&store, hsm.as_ref(), &config.hsm.token_label)?;
        if missing.iter().any(|k| k.id == audit_key) {
            return Err(Error::Invalid(format!(
                "the HSM audit key {audit_key} is not on token '{}': the token was reset or replaced. \
                 The daemon will not run without its audit trail; reconnect the original token",
                config.hsm.token_label
            )));
        }
        let audit = AuditTrail::open(store.clone(), hsm.clone(), audit_key)?;
        let login_key = hsm.random(32)?;
        let appliance = Self {
            store,
            hsm,
            audit,
            missing_keys: Mutex::new(Vec::new()),
            torn_objects: Mutex::new(Vec::new()),
            firmware: config.firmware.clone(),
            hardening: Mutex::new(Default::default()),
            user_changes: Mutex::new(()),
            config_changes: Mutex::new(()),
            rotation: config.rotation.clone(),
            token_label: config.hsm.token_label.clone(),
            hsm_fault: Mutex::new(None),
            health: Mutex::new(()),
            fault_audited: std::sync::atomic::AtomicBool::new(false),
            records: Mutex::new(()),
            logins: users::Logins::new(&login_key),
        };
        for key in &missing {
            error!(key = %key.id, label = %key.label, purpose = key.purpose.as_str(), "key in the database is missing from the HSM");
            appliance.audit.append(
                AuditEntry::new(
                    Channel::System,
                    "hsm.reconcile",
                    key.id.to_string(),
                    Outcome::Notice,
                )
                .detail("finding", "key is in the database but not on the token")
                .detail("label", key.label.clone())
                .detail("purpose", key.purpose.as_str()),
            )?;
        }
        *appliance
            .missing_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = missing;
        let torn = appliance.remove_torn_objects()?;
        *appliance
            .torn_objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = torn;
        Ok(appliance)
    }

    /// Removes the empty objects an interrupted write left on the token (a kill inside the
    /// audit-head update), audited before and after. Returns what `status` shows of them. A
    /// removal that fails is reported and start-up goes on: an empty object harms nothing.
    fn remove_torn_objects(&self) -> Result<Vec<String>> {
        let found = self.hsm.torn_objects()?;
        if found.is_empty() {
            return Ok(found);
        }
        warn!(objects = ?found, "the token holds objects an interrupted write left empty; removing them");
        let entry = |outcome| {
            AuditEntry::new(
                Channel::System,
                "hsm.torn-object",
                self.token_label.clone(),
                outcome,
            )
            .detail(
                "finding",
                "empty objects on the token, left by a write that was interrupted",
            )
            .detail("objects", found.join("; "))
        };
        self.audit.append(entry(Outcome::Attempt))?;
        let (outcome, done) = match self.hsm.remove_torn_objects() {
            Ok(removed) => (
                entry(Outcome::Success).detail("removed", removed.to_string()),
                "removed at start-up".to_owned(),
            ),
            Err(e) => {
                error!(error = %e, "the torn objects could not be removed");
                (
                    entry(Outcome::Failure).detail("error", e.to_string()),
                    format!("found at start-up; removing it failed: {e}"),
                )
            }
        };
        self.audit.append(outcome)?;
        Ok(found.iter().map(|o| format!("{o}: {done}")).collect())
    }

    /// Records the attempt, runs `operation`, records the outcome. If the attempt cannot be
    /// recorded, the operation does not run.
    pub fn audited<T>(
        &self,
        by: &Actors,
        action: &str,
        target: &str,
        operation: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.audited_with(by, action, target, &[], operation)
    }

    /// As [`Self::audited`], with `details` on both the attempt and the outcome record (a
    /// setting's old and new value).
    pub fn audited_with<T>(
        &self,
        by: &Actors,
        action: &str,
        target: &str,
        details: &[(&str, &str)],
        operation: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let with = |entry: AuditEntry| {
            details
                .iter()
                .fold(entry, |entry, (key, value)| entry.detail(*key, *value))
        };
        self.require_hsm()?;
        self.audit
            .append(with(by.entry(action, target, Outcome::Attempt)))?;
        let result = operation();
        let outcome = match &result {
            Ok(_) => by.entry(action, target, Outcome::Success),
            Err(e) => by
                .entry(action, target, Outcome::Failure)
                .detail("error", e.to_string()),
        };
        if let Err(e) = self.audit.append(with(outcome)) {
            // The operation has run, but the trail does not say how it ended: report that as the
            // error, so nobody takes it for a clean success (or retries blindly).
            error!(action, target, error = %e, "the outcome of an audited operation could not be recorded");
            return Err(Error::Audit(e));
        }
        result
    }

    /// Records a daemon lifecycle event (start, stop).
    pub fn record_lifecycle(&self, action: &str) -> Result<u64> {
        Ok(self.audit.append(
            AuditEntry::new(Channel::System, action, "keywardd", Outcome::Notice)
                .detail("version", VERSION),
        )?)
    }

    /// Held while a key or schedule record is read, changed and written back.
    pub fn lock_records(&self) -> std::sync::MutexGuard<'_, ()> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes a group's schedule record (read, change, write; not flushed).
    pub fn update_schedule(
        &self,
        group: &str,
        change: impl FnOnce(&mut crate::domain::schedule::ScheduleState),
    ) -> Result<()> {
        let _one_at_a_time = self.lock_records();
        if self.store.get_group(group)?.is_none() {
            // Removed meanwhile: a later group of the same name starts afresh.
            return Ok(());
        }
        let mut state = self.store.get_schedule(group)?;
        change(&mut state);
        self.store.put_schedule(group, &state)?;
        Ok(())
    }

    fn lock_user_changes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.user_changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records what process hardening was done, for `status`.
    pub fn set_hardening(&self, measures: std::collections::BTreeMap<String, String>) {
        *self
            .hardening
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = measures;
    }

    pub fn missing_keys(&self) -> Vec<KeyId> {
        self.missing_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|k| k.id)
            .collect()
    }

    /// HSM, store and audit status. The HSM part is read live, so a fault shows here.
    pub fn status(&self) -> Result<StatusReport> {
        let (mut state, token) = match self.hsm.token_info() {
            Ok(t) => ("ok".to_owned(), Some(t)),
            Err(e) => (format!("fault: {e}"), None),
        };
        if let Some(fault) = self.hsm_fault() {
            state = format!("fault: {fault}");
        }
        let token = token.unwrap_or_default();
        let head = self.audit.head();
        Ok(StatusReport {
            version: VERSION.into(),
            hsm: HsmStatus {
                state,
                token_label: token.label,
                serial: token.serial,
                manufacturer: token.manufacturer,
                model: token.model,
                wrap_algorithms: self
                    .hsm
                    .capabilities()
                    .wrap_algorithms
                    .iter()
                    .map(|a| a.aws_name().to_owned())
                    .collect(),
                missing_keys: self
                    .missing_keys()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                torn_objects: self
                    .torn_objects
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone(),
            },
            store: StoreStatus {
                path: self.store.path().display().to_string(),
                schema_version: self.store.schema_version()?,
                size_bytes: self.store.size_on_disk(),
                users: self.store.users.len(),
                keys: self.store.keys.len(),
            },
            audit: AuditStatus {
                records: self.store.audit_len() as u64,
                head_seq: head.seq,
                head_hash: hex::encode(head.hash),
            },
            hardening: self
                .hardening
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            scheduler: Default::default(),
        })
    }
}

/// Undoes a first boot that did not finish (it failed, or the machine stopped mid-way): its HSM
/// keys are destroyed and its records removed. Only called on a database that is not
/// initialised, where every record belongs to that attempt.
fn discard_interrupted_init(store: &Store, hsm: &dyn Hsm) -> Result<()> {
    let leftovers = store.list_keys()?;
    if leftovers.is_empty() && store.users.is_empty() && store.audit.is_empty() {
        return Ok(());
    }
    info!(
        keys = leftovers.len(),
        "discarding an interrupted first boot"
    );
    for key in &leftovers {
        if key.purpose == KeyPurpose::Audit {
            crate::audit::discard_anchor(hsm, &key.id)?;
        }
        match hsm.destroy_key(&key.id) {
            Ok(()) | Err(crate::hsm::HsmError::KeyNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    store.clear_records()?;
    Ok(())
}

/// Every key the database knows that the token does not hold. Nothing is dropped. The token
/// is listed once and the two sets compared, so start-up stays linear in the key count.
pub fn reconcile(store: &Store, hsm: &dyn Hsm, token: &str) -> Result<Vec<KeyRecord>> {
    let mut missing = Vec::new();
    let keys = store.list_keys()?;
    let on_token = hsm.key_ids()?;
    let mut recorded = 0;
    for key in &keys {
        if key.source != KeySource::Hsm {
            continue;
        }
        if !on_token.contains(&key.id) {
            missing.push(key.clone());
        } else if key.tokens.is_empty() {
            // A key from schema 1, which did not say which token holds it: this one does.
            let mut key = key.clone();
            key.tokens.push(token.to_owned());
            store.put_key(&key)?;
            recorded += 1;
        }
    }
    if recorded > 0 {
        store.flush()?;
        info!(
            keys = recorded,
            token, "recorded which token holds each key"
        );
    }
    info!(
        keys = keys.len(),
        missing = missing.len(),
        "reconciled the key database with the HSM"
    );
    Ok(missing)
}

/// The data directory holds the database and the console socket: owner only.
pub fn create_data_dir(dir: &std::path::Path) -> Result<()> {
    Ok(crate::secret_file::create_private_dir(dir, "data_dir")?)
}
