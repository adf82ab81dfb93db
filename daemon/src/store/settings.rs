//! Appliance settings: small named values (the ids of the HSM system keys, later the
//! designated-rotator flag and others).

use super::{Store, StoreResult, decode, encode};
use crate::domain::keys::KeyId;

pub const STORAGE_KEY: &str = "hsm.storage_key";
pub const AUDIT_KEY: &str = "hsm.audit_key";

impl Store {
    pub fn get_key_setting(&self, name: &str) -> StoreResult<Option<KeyId>> {
        self.settings
            .get(name)?
            .map(|raw| decode("settings", name.as_bytes(), &raw))
            .transpose()
    }

    pub fn put_key_setting(&self, name: &str, id: &KeyId) -> StoreResult<()> {
        self.settings.insert(name, encode(id))?;
        Ok(())
    }

    /// Whether `keywardd init` has completed on this database.
    pub fn is_initialised(&self) -> StoreResult<bool> {
        Ok(self.settings.contains_key(AUDIT_KEY)? && self.settings.contains_key(STORAGE_KEY)?)
    }
}

/// Whether this appliance runs scheduled rotations.
pub const ROTATION_DESIGNATED: &str = "rotation.designated";

impl Store {
    pub fn get_bool_setting(&self, name: &str) -> StoreResult<Option<bool>> {
        self.settings
            .get(name)?
            .map(|raw| decode("settings", name.as_bytes(), &raw))
            .transpose()
    }

    pub fn put_bool_setting(&self, name: &str, value: bool) -> StoreResult<()> {
        self.settings.insert(name, encode(&value))?;
        Ok(())
    }
}
