//! The credentials tree: AWS credentials by name. The secret is stored only sealed under the
//! HSM storage key (see `domain::credentials`).

use super::{Store, StoreResult, decode, decode_all, encode};
use crate::domain::credentials::Credential;

impl Store {
    pub fn put_credential(&self, credential: &Credential) -> StoreResult<()> {
        self.credentials
            .insert(credential.name.as_bytes(), encode(credential))?;
        Ok(())
    }

    pub fn get_credential(&self, name: &str) -> StoreResult<Option<Credential>> {
        self.credentials
            .get(name)?
            .map(|raw| decode("credentials", name.as_bytes(), &raw))
            .transpose()
    }

    pub fn list_credentials(&self) -> StoreResult<Vec<Credential>> {
        decode_all("credentials", &self.credentials)
    }

    pub fn remove_credential(&self, name: &str) -> StoreResult<bool> {
        Ok(self.credentials.remove(name)?.is_some())
    }
}
