//! [`Hsm`] over PKCS#11 (cryptoki), for any vendor's module.
//!
//! One file per family: `pool` (sessions, the handle cache, recovery), `probe` (what the token
//! can wrap with), `keys`, `wrapping` (export for AWS), `sealing` (AES-GCM), `mac` (HMAC for
//! the audit trail) and `anchors` (the audit head kept in the token). This file holds the
//! state they share and the trait implementation that routes to them.

mod anchors;
mod error;
mod keys;
mod mac;
mod pool;
mod probe;
mod sealing;
mod wrapping;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use secrecy::{SecretSlice, SecretString};
use tracing::info;

use super::{Capabilities, GeneratedKey, Hsm, HsmResult, TokenInfo, WrapAlgorithm};
use crate::domain::keys::{Fingerprint, KeyId, KeyPurpose};
use pool::{Context, lock};

/// Where the module is and how to log in.
pub struct Pkcs11Settings {
    pub module: PathBuf,
    pub token_label: String,
    pub pin: SecretString,
    /// At most this many PKCS#11 calls run at once, each on its own session; more wait.
    /// Tokens that are not thread-safe (SoftHSMv2 2.6.1) need 1.
    pub sessions: usize,
}

impl std::fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"[redacted]")
            .finish()
    }
}

pub struct Pkcs11Hsm {
    settings: Pkcs11Settings,
    context: RwLock<Option<Arc<Context>>>,
    capabilities: RwLock<Capabilities>,
    fault: Mutex<Option<String>>,
    /// Calls in flight, bounded by `settings.sessions`.
    in_flight: Mutex<usize>,
    slot_free: Condvar,
    /// C_FindObjects searches run since `open` (a diagnostic).
    searches: AtomicU64,
}

impl Pkcs11Hsm {
    /// Loads the module, finds the token by label, logs in and probes what it can wrap with.
    pub fn open(settings: Pkcs11Settings) -> HsmResult<Self> {
        let hsm = Self {
            settings,
            context: RwLock::new(None),
            capabilities: RwLock::new(Capabilities::default()),
            fault: Mutex::new(None),
            in_flight: Mutex::new(0),
            slot_free: Condvar::new(),
            searches: AtomicU64::new(0),
        };
        hsm.context()?;
        let caps = probe::probe(&hsm)?;
        info!(token = %hsm.settings.token_label, wrap = ?caps.wrap_algorithms, "HSM capabilities probed");
        *hsm.capabilities
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = caps;
        Ok(hsm)
    }
}

impl Hsm for Pkcs11Hsm {
    fn token_info(&self) -> HsmResult<TokenInfo> {
        self.with_context("C_GetTokenInfo", |ctx| {
            let info = ctx.pkcs11().get_token_info(ctx.slot)?;
            Ok(TokenInfo {
                label: info.label().trim_end().to_owned(),
                serial: info.serial_number().trim_end().to_owned(),
                manufacturer: info.manufacturer_id().trim_end().to_owned(),
                model: info.model().trim_end().to_owned(),
            })
        })
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn generate_key_with_id(
        &self,
        purpose: KeyPurpose,
        label: &str,
        id: KeyId,
    ) -> HsmResult<GeneratedKey> {
        keys::generate(self, purpose, label, id)
    }

    fn find_key(&self, id: &KeyId) -> HsmResult<Option<String>> {
        keys::find_label(self, id)
    }

    fn key_ids(&self) -> HsmResult<BTreeSet<KeyId>> {
        keys::ids(self)
    }

    fn destroy_key(&self, id: &KeyId) -> HsmResult<()> {
        keys::destroy(self, id)
    }

    fn fingerprint(&self, id: &KeyId) -> HsmResult<Fingerprint> {
        keys::fingerprint(self, id)
    }

    fn wrap_key(
        &self,
        id: &KeyId,
        wrapping_key_der: &[u8],
        alg: WrapAlgorithm,
    ) -> HsmResult<Vec<u8>> {
        wrapping::wrap(self, id, wrapping_key_der, alg)
    }

    fn encrypt(&self, id: &KeyId, plaintext: &[u8], aad: &[u8]) -> HsmResult<Vec<u8>> {
        sealing::seal(self, id, plaintext, aad)
    }

    fn decrypt(&self, id: &KeyId, sealed: &[u8], aad: &[u8]) -> HsmResult<SecretSlice<u8>> {
        sealing::unseal(self, id, sealed, aad)
    }

    fn hmac_sign(&self, id: &KeyId, data: &[u8]) -> HsmResult<Vec<u8>> {
        mac::sign(self, id, data)
    }

    fn hmac_verify(&self, id: &KeyId, data: &[u8], mac: &[u8]) -> HsmResult<bool> {
        mac::verify(self, id, data, mac)
    }

    fn random(&self, len: usize) -> HsmResult<Vec<u8>> {
        keys::random(self, len)
    }

    fn read_anchors(&self, name: &str) -> HsmResult<Vec<Vec<u8>>> {
        anchors::read(self, name)
    }

    fn write_anchor(&self, name: &str, value: &[u8]) -> HsmResult<()> {
        anchors::write(self, name, value)
    }

    fn remove_anchors(&self, name: &str) -> HsmResult<()> {
        anchors::remove(self, name)
    }

    fn torn_objects(&self) -> HsmResult<Vec<String>> {
        anchors::torn(self)
    }

    fn remove_torn_objects(&self) -> HsmResult<usize> {
        anchors::remove_torn(self)
    }

    fn fault(&self) -> Option<String> {
        lock(&self.fault).clone()
    }

    fn reset(&self) {
        self.drop_context();
    }
}
