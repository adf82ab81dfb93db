//! The groups tree: key groups by name.

use super::{Store, StoreResult, decode, decode_all, encode};
use crate::domain::groups::Group;

impl Store {
    pub fn put_group(&self, group: &Group) -> StoreResult<()> {
        self.groups.insert(group.name.as_bytes(), encode(group))?;
        Ok(())
    }

    pub fn get_group(&self, name: &str) -> StoreResult<Option<Group>> {
        self.groups
            .get(name)?
            .map(|raw| decode("groups", name.as_bytes(), &raw))
            .transpose()
    }

    pub fn list_groups(&self) -> StoreResult<Vec<Group>> {
        decode_all("groups", &self.groups)
    }

    pub fn remove_group(&self, name: &str) -> StoreResult<bool> {
        Ok(self.groups.remove(name)?.is_some())
    }
}
