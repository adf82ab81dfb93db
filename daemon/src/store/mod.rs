//! The on-box database (sled): one tree per kind of record, a schema version, and a flush at
//! every durable point. Values are JSON; keys are names or big-endian sequence numbers.
//! Nothing stored here is key material: keys are referenced by their HSM id.

pub mod audit;
pub mod credentials;
pub mod groups;
pub mod jobs;
pub mod keys;
mod migrate;
pub mod schedule;
pub mod settings;
pub mod users;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The schema this build reads and writes. Bump it with a migration in [`Store::open`].
///
/// - 1: the first schema.
/// - 2: a key says where its material came from (`source`), which tokens hold it (`tokens`),
///   and holds any number of AWS bindings (`cloud.aws`).
pub const SCHEMA_VERSION: u32 = 2;

const META_TREE: &str = "meta";
const SCHEMA_KEY: &[u8] = b"schema_version";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database in {path} is in use by another process: keywardd is running. Stop it first, or use the running daemon's own commands"
    )]
    Locked { path: String, reason: String },
    #[error("database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error(
        "the database in {path} has schema version {found}, newer than this firmware's {SCHEMA_VERSION}; install the firmware that wrote it"
    )]
    NewerSchema { path: String, found: u32 },
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    #[error("database record {tree}/{key} is corrupt: {reason}")]
    Corrupt {
        tree: &'static str,
        key: String,
        reason: String,
    },
    #[error("{0}")]
    Conflict(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The open database and its trees.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    pub settings: sled::Tree,
    pub users: sled::Tree,
    pub credentials: sled::Tree,
    pub groups: sled::Tree,
    pub keys: sled::Tree,
    pub jobs: sled::Tree,
    pub schedule: sled::Tree,
    pub audit: sled::Tree,
}

impl Store {
    /// Opens (or creates) the database in `dir`, refusing a schema newer than this build's.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        let path = dir.join("db");
        let shown = path.display().to_string();
        let db = sled::Config::new()
            .path(&path)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|source| match &source {
                sled::Error::Io(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock") =>
                {
                    StoreError::Locked {
                        path: shown.clone(),
                        reason: e.to_string(),
                    }
                }
                _ => StoreError::Open {
                    path: shown.clone(),
                    source,
                },
            })?;
        let meta = db.open_tree(META_TREE)?;
        let found = match meta.get(SCHEMA_KEY)? {
            None => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
                SCHEMA_VERSION
            }
            Some(raw) => {
                let found = <[u8; 4]>::try_from(raw.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        tree: META_TREE,
                        key: "schema_version".into(),
                        reason: "not a 4-byte version".into(),
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::NewerSchema { path: shown, found });
                }
                found
            }
        };
        let store = Self {
            settings: db.open_tree("settings")?,
            users: db.open_tree("users")?,
            credentials: db.open_tree("credentials")?,
            groups: db.open_tree("groups")?,
            keys: db.open_tree("keys")?,
            jobs: db.open_tree("jobs")?,
            schedule: db.open_tree("schedule")?,
            audit: db.open_tree("audit")?,
            db,
            path,
        };
        if found < SCHEMA_VERSION {
            migrate::run(&store, found)?;
            meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
        }
        store.flush()?;
        Ok(store)
    }

    /// Makes everything written so far durable. Called before reporting success.
    pub fn flush(&self) -> StoreResult<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Empties every record tree (the schema version stays). Used only to discard a first boot
    /// that did not finish.
    pub fn clear_records(&self) -> StoreResult<()> {
        for tree in [
            &self.settings,
            &self.users,
            &self.credentials,
            &self.groups,
            &self.keys,
            &self.jobs,
            &self.schedule,
            &self.audit,
        ] {
            tree.clear()?;
        }
        self.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> StoreResult<u32> {
        let meta = self.db.open_tree(META_TREE)?;
        Ok(meta
            .get(SCHEMA_KEY)?
            .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
            .map_or(0, u32::from_be_bytes))
    }

    /// Sets the schema version (tests of the refusal path use this).
    pub fn set_schema_version(&self, version: u32) -> StoreResult<()> {
        self.db
            .open_tree(META_TREE)?
            .insert(SCHEMA_KEY, &version.to_be_bytes())?;
        self.flush()
    }

    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// JSON-encodes a record.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Records are plain structs of strings and numbers; encoding cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Decodes a record, naming it when it is corrupt.
pub(crate) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    raw: &[u8],
) -> StoreResult<T> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
        tree,
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

/// Every record of a tree, decoded in key order.
pub(crate) fn decode_all<T: DeserializeOwned>(
    tree_name: &'static str,
    tree: &sled::Tree,
) -> StoreResult<Vec<T>> {
    tree.iter()
        .map(|item| {
            let (k, v) = item?;
            decode(tree_name, &k, &v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_schema_is_refused_and_current_reopens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        }
        {
            let store = Store::open(dir.path()).unwrap();
            store.set_schema_version(SCHEMA_VERSION + 1).unwrap();
        }
        match Store::open(dir.path()) {
            Err(e @ StoreError::NewerSchema { .. }) => {
                assert!(e.to_string().contains("newer than this firmware"))
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a newer schema must be refused"),
        }
    }
}
