//! The keys tree: metadata of every key Keyward has in the HSM, keyed by key id (hex).

use super::{Store, StoreResult, decode, decode_all, encode};
use crate::domain::keys::{KeyId, KeyRecord};

impl Store {
    pub fn put_key(&self, key: &KeyRecord) -> StoreResult<()> {
        self.keys.insert(key.id.to_string(), encode(key))?;
        Ok(())
    }

    pub fn get_key(&self, id: &KeyId) -> StoreResult<Option<KeyRecord>> {
        let name = id.to_string();
        self.keys
            .get(&name)?
            .map(|raw| decode("keys", name.as_bytes(), &raw))
            .transpose()
    }

    pub fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        decode_all("keys", &self.keys)
    }
}
