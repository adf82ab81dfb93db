//! The users tree: one record per account, keyed by name.

use super::{Store, StoreError, StoreResult, decode, decode_all, encode};
use crate::domain::users::User;

impl Store {
    pub fn get_user(&self, name: &str) -> StoreResult<Option<User>> {
        self.users
            .get(name)?
            .map(|raw| decode("users", name.as_bytes(), &raw))
            .transpose()
    }

    pub fn list_users(&self) -> StoreResult<Vec<User>> {
        decode_all("users", &self.users)
    }

    /// Replaces an existing account's record.
    pub fn put_user(&self, user: &User) -> StoreResult<()> {
        self.users.insert(&user.name, encode(user))?;
        Ok(())
    }

    pub fn remove_user(&self, name: &str) -> StoreResult<bool> {
        Ok(self.users.remove(name)?.is_some())
    }

    /// Adds a new account; an existing name is a conflict, never overwritten.
    pub fn add_user(&self, user: &User) -> StoreResult<()> {
        let prior = self
            .users
            .compare_and_swap(&user.name, None::<&[u8]>, Some(encode(user)))?;
        prior.map_err(|_| StoreError::Conflict(format!("user '{}' already exists", user.name)))
    }
}
