//! [`Hsm`] over PKCS#11 (cryptoki), for any vendor's module.
//!
//! Sessions are pooled and logged in. A fatal session error evicts that session; a device error
//! drops the whole PKCS#11 context, which is rebuilt (C_Finalize, C_Initialize, find the token
//! by label, log in) on the next call. That is the one recovery path.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::{SecretSlice, SecretString};
use tracing::{debug, info, warn};

use super::{
    Capabilities, GeneratedKey, Hsm, HsmError, HsmResult, TokenInfo, WrapAlgorithm, rsa_spki,
};
use crate::domain::keys::{Fingerprint, KeyId, KeyPurpose};

const GCM_IV_LEN: usize = 12;
const GCM_TAG_BITS: u64 = 128;
/// Marks the token objects Keyward owns (CKA_APPLICATION of data objects).
const APPLICATION: &[u8] = b"keyward";

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

struct Context {
    pkcs11: Pkcs11,
    slot: Slot,
    idle: Mutex<Vec<Session>>,
}

pub struct Pkcs11Hsm {
    settings: Pkcs11Settings,
    context: RwLock<Option<Arc<Context>>>,
    capabilities: RwLock<Capabilities>,
    fault: Mutex<Option<String>>,
    /// Calls in flight, bounded by `settings.sessions`.
    in_flight: Mutex<usize>,
    slot_free: Condvar,
}

/// A permit to run one PKCS#11 call; returned on drop.
struct Permit<'a>(&'a Pkcs11Hsm);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *lock(&self.0.in_flight) -= 1;
        // All: a `reset` waiting for no call in flight must wake too.
        self.0.slot_free.notify_all();
    }
}

/// How a failed call affects the pool.
enum Damage {
    None,
    Session,
    Device,
}

fn classify(rv: RvError) -> Damage {
    match rv {
        RvError::DeviceError
        | RvError::DeviceRemoved
        | RvError::TokenNotPresent
        | RvError::TokenNotRecognized
        | RvError::CryptokiNotInitialized => Damage::Device,
        // Not GENERAL_ERROR: SoftHSM returns it for a failed GCM tag check, a bad input that
        // must not tear down the context.
        RvError::SessionHandleInvalid | RvError::SessionClosed | RvError::UserNotLoggedIn => {
            Damage::Session
        }
        _ => Damage::None,
    }
}

/// A cryptoki error as an [`HsmError`] for operation `op`.
fn p11(op: &'static str) -> impl Fn(P11Error) -> HsmError {
    move |e| match &e {
        P11Error::Pkcs11(rv, _) if matches!(classify(*rv), Damage::Device) => HsmError::Device {
            op,
            reason: e.to_string(),
        },
        P11Error::Pkcs11(rv, _) if matches!(classify(*rv), Damage::Session) => {
            HsmError::SessionLost {
                op,
                reason: short(&e),
            }
        }
        _ => HsmError::Operation {
            op,
            reason: short(&e),
        },
    }
}

/// cryptoki's messages quote the whole PKCS#11 spec paragraph; keep the code and function.
fn short(e: &P11Error) -> String {
    match e {
        P11Error::Pkcs11(rv, function) => format!("{function}: {rv:?}"),
        other => other.to_string(),
    }
}

fn rv_of(e: &HsmError) -> Damage {
    match e {
        HsmError::Device { .. } => Damage::Device,
        HsmError::SessionLost { .. } => Damage::Session,
        _ => Damage::None,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        };
        hsm.context()?;
        let caps = hsm.probe()?;
        info!(token = %hsm.settings.token_label, wrap = ?caps.wrap_algorithms, "HSM capabilities probed");
        *hsm.capabilities
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = caps;
        Ok(hsm)
    }

    fn build_context(&self) -> HsmResult<Context> {
        let module = self.settings.module.display().to_string();
        let pkcs11 = Pkcs11::new(&self.settings.module).map_err(|e| HsmError::Module {
            module: module.clone(),
            reason: e.to_string(),
        })?;
        match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                // The library loaded; it could not start. For a token that was working, that is
                // usually its token store gone (SoftHSM: the tokens directory).
                return Err(HsmError::Device {
                    op: "C_Initialize",
                    reason: format!(
                        "{module} loaded but could not initialise ({}); is the token connected and its store readable?",
                        short(&e)
                    ),
                });
            }
        }
        let label = &self.settings.token_label;
        let slots = pkcs11
            .get_slots_with_initialized_token()
            .map_err(p11("C_GetSlotList"))?;
        let mut found = None;
        for slot in slots {
            let info = pkcs11.get_token_info(slot).map_err(p11("C_GetTokenInfo"))?;
            if info.label().trim_end() == label {
                if found.is_some() {
                    return Err(HsmError::Operation {
                        op: "find token",
                        reason: format!("two tokens are labelled '{label}'; relabel one"),
                    });
                }
                found = Some(slot);
            }
        }
        let slot = found.ok_or_else(|| HsmError::TokenNotFound {
            label: label.clone(),
        })?;
        Ok(Context {
            pkcs11,
            slot,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The live context, rebuilding it after a device error.
    fn context(&self) -> HsmResult<Arc<Context>> {
        if let Some(ctx) = self
            .context
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            return Ok(ctx.clone());
        }
        let mut slot = self
            .context
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ctx) = slot.as_ref() {
            return Ok(ctx.clone());
        }
        match self.build_context() {
            Ok(ctx) => {
                let ctx = Arc::new(ctx);
                // Log in once to prove the PIN before anyone relies on the context.
                let session = self.open_session(&ctx)?;
                lock(&ctx.idle).push(session);
                *slot = Some(ctx.clone());
                if lock(&self.fault).take().is_some() {
                    info!(token = %self.settings.token_label, "HSM recovered");
                }
                Ok(ctx)
            }
            Err(e) => {
                *lock(&self.fault) = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn open_session(&self, ctx: &Context) -> HsmResult<Session> {
        let session = ctx
            .pkcs11
            .open_rw_session(ctx.slot)
            .map_err(p11("C_OpenSession"))?;
        match session.login(UserType::User, Some(&self.settings.pin)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(P11Error::Pkcs11(
                rv @ (RvError::PinIncorrect
                | RvError::PinLocked
                | RvError::PinExpired
                | RvError::PinInvalid
                | RvError::PinLenRange),
                _,
            )) => Err(HsmError::Login {
                reason: format!("{rv:?}"),
            }),
            Err(e) => Err(p11("C_Login")(e)),
        }
    }

    /// Drops the context after a device error; the next call rebuilds it.
    fn invalidate(&self, failed: &Arc<Context>, reason: &str) {
        let mut slot = self
            .context
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
            warn!(token = %self.settings.token_label, %reason, "HSM device error: dropping the PKCS#11 context");
            *slot = None;
            *lock(&self.fault) = Some(reason.to_owned());
            lock(&failed.idle).clear();
            // Finalize so the next C_Initialize rescans slots; other holders see
            // CKR_CRYPTOKI_NOT_INITIALIZED, which routes them here too.
            let _ = failed.pkcs11.clone().finalize();
        }
    }

    fn permit(&self) -> Permit<'_> {
        let mut n = lock(&self.in_flight);
        while *n >= self.settings.sessions.max(1) {
            n = self
                .slot_free
                .wait(n)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *n += 1;
        Permit(self)
    }

    /// Runs `op` on a pooled, logged-in session. Sessions are only closed when they are broken:
    /// closing the last one would log the token out (and races in some tokens).
    fn with_session<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Session) -> HsmResult<T>,
    ) -> HsmResult<T> {
        let _permit = self.permit();
        let ctx = self.context()?;
        let pooled = lock(&ctx.idle).pop();
        let session = match pooled {
            Some(s) => s,
            None => match self.open_session(&ctx) {
                Ok(s) => s,
                Err(e) => {
                    if e.is_device_fault() {
                        self.invalidate(&ctx, &e.to_string());
                    }
                    return Err(e);
                }
            },
        };
        let result = f(&session);
        match result.as_ref().map_err(rv_of) {
            Err(Damage::Device) => {
                let reason = result
                    .as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                drop(session);
                self.invalidate(&ctx, &reason);
            }
            Err(Damage::Session) => warn!(op, "PKCS#11 session lost; evicting it from the pool"),
            Ok(_) | Err(Damage::None) => lock(&ctx.idle).push(session),
        }
        result
    }

    fn probe(&self) -> HsmResult<Capabilities> {
        self.with_session("probe", |s| {
            let public = [
                Attribute::Token(false),
                Attribute::ModulusBits(2048.into()),
                Attribute::PublicExponent(vec![1, 0, 1]),
                Attribute::Wrap(true),
                Attribute::Encrypt(true),
            ];
            let private = [Attribute::Token(false), Attribute::Sensitive(true), Attribute::Unwrap(true), Attribute::Decrypt(true)];
            let (pub_key, priv_key) = match s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private) {
                Ok(pair) => pair,
                Err(e) => {
                    warn!(error = %short(&e), "the token cannot make an RSA key pair to probe wrapping; assuming no wrap support");
                    return Ok(Capabilities::default());
                }
            };
            let target = s.generate_key(&Mechanism::AesKeyGen, &session_aes_template(true)).map_err(p11("probe C_GenerateKey"))?;
            let mut caps = Capabilities::default();
            for alg in WrapAlgorithm::ALL {
                match wrap_with(s, alg, pub_key, target) {
                    Ok(_) => caps.wrap_algorithms.push(alg),
                    Err(e) => debug!(%alg, reason = %e, "wrap algorithm not available on this token"),
                }
            }
            for handle in [target, pub_key, priv_key] {
                let _ = s.destroy_object(handle);
            }
            Ok(caps)
        })
    }
}

/// A session-only AES-256 key (the probe's target and RSA-AES's ephemeral key).
fn session_aes_template(wrap: bool) -> Vec<Attribute> {
    vec![
        Attribute::Token(false),
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::Wrap(wrap),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
    ]
}

fn oaep(alg: WrapAlgorithm) -> Mechanism<'static> {
    let params = if alg.uses_sha256() {
        PkcsOaepParams::new(
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            PkcsOaepSource::empty(),
        )
    } else {
        PkcsOaepParams::new(
            MechanismType::SHA1,
            PkcsMgfType::MGF1_SHA1,
            PkcsOaepSource::empty(),
        )
    };
    Mechanism::RsaPkcsOaep(params)
}

/// Wraps `target` under `rsa_public` with `alg`, entirely inside the HSM.
///
/// RSA_AES_KEY_WRAP is composed from its parts, as AWS documents it: a fresh session AES key
/// wraps the target with AES key wrap with padding (RFC 5649), RSA-OAEP wraps that AES key, and
/// the result is the two concatenated. The ephemeral key is destroyed before returning.
fn wrap_with(
    s: &Session,
    alg: WrapAlgorithm,
    rsa_public: ObjectHandle,
    target: ObjectHandle,
) -> HsmResult<Vec<u8>> {
    if !alg.is_rsa_aes() {
        return s
            .wrap_key(&oaep(alg), rsa_public, target)
            .map_err(p11("C_WrapKey(RSA-OAEP)"));
    }
    let ephemeral = s
        .generate_key(&Mechanism::AesKeyGen, &session_aes_template(true))
        .map_err(p11("C_GenerateKey(ephemeral)"))?;
    let result = (|| {
        let wrapped_target = s
            .wrap_key(&Mechanism::AesKeyWrapPad, ephemeral, target)
            .map_err(p11("C_WrapKey(AES-KWP)"))?;
        let mut out = s
            .wrap_key(&oaep(alg), rsa_public, ephemeral)
            .map_err(p11("C_WrapKey(RSA-OAEP)"))?;
        out.extend_from_slice(&wrapped_target);
        Ok(out)
    })();
    let _ = s.destroy_object(ephemeral);
    result
}

fn find_secret(s: &Session, id: &KeyId) -> HsmResult<Option<ObjectHandle>> {
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Id(id.as_bytes().to_vec()),
        ])
        .map_err(p11("C_FindObjects"))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(HsmError::Operation {
            op: "find key",
            reason: format!("{} objects share key id {id}", found.len()),
        }),
    }
}

fn require_secret(s: &Session, id: &KeyId) -> HsmResult<ObjectHandle> {
    find_secret(s, id)?.ok_or(HsmError::KeyNotFound { id: *id })
}

fn key_type(s: &Session, key: ObjectHandle) -> HsmResult<KeyType> {
    let attrs = s
        .get_attributes(key, &[AttributeType::KeyType])
        .map_err(p11("C_GetAttributeValue"))?;
    attrs
        .into_iter()
        .find_map(|a| {
            if let Attribute::KeyType(t) = a {
                Some(t)
            } else {
                None
            }
        })
        .ok_or(HsmError::Operation {
            op: "read key type",
            reason: "the token did not return CKA_KEY_TYPE".into(),
        })
}

/// AES-ECB of a zero block for AES keys; HMAC of a zero block for MAC keys.
fn check_value(s: &Session, key: ObjectHandle) -> HsmResult<Fingerprint> {
    let zeros = [0u8; 16];
    let block = if key_type(s, key)? == KeyType::AES {
        s.encrypt(&Mechanism::AesEcb, key, &zeros)
            .map_err(p11("C_Encrypt(ECB check value)"))?
    } else {
        s.sign(&Mechanism::Sha256Hmac, key, &zeros)
            .map_err(p11("C_Sign(check value)"))?
    };
    Ok(Fingerprint::from_check_block(&block))
}

fn find_anchors(s: &Session, name: &str) -> HsmResult<Vec<ObjectHandle>> {
    s.find_objects(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Application(APPLICATION.to_vec()),
        Attribute::Label(name.as_bytes().to_vec()),
    ])
    .map_err(p11("C_FindObjects"))
}

impl Hsm for Pkcs11Hsm {
    fn token_info(&self) -> HsmResult<TokenInfo> {
        let _permit = self.permit();
        let ctx = self.context()?;
        match ctx.pkcs11.get_token_info(ctx.slot) {
            Ok(info) => Ok(TokenInfo {
                label: info.label().trim_end().to_owned(),
                serial: info.serial_number().trim_end().to_owned(),
                manufacturer: info.manufacturer_id().trim_end().to_owned(),
                model: info.model().trim_end().to_owned(),
            }),
            Err(e) => {
                let err = p11("C_GetTokenInfo")(e);
                if err.is_device_fault() {
                    self.invalidate(&ctx, &err.to_string());
                }
                Err(err)
            }
        }
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
        self.with_session("generate key", |s| {
            let mut template = vec![
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Id(id.as_bytes().to_vec()),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::ValueLen(32.into()),
                // SoftHSM and others default some usages on; state every one.
                Attribute::Wrap(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
            ];
            let mechanism = match purpose {
                KeyPurpose::Storage | KeyPurpose::Customer => {
                    template.extend([
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                        Attribute::Sign(false),
                        Attribute::Verify(false),
                        // Only customer keys may leave, and only wrapped.
                        Attribute::Extractable(purpose == KeyPurpose::Customer),
                    ]);
                    Mechanism::AesKeyGen
                }
                KeyPurpose::Audit => {
                    template.extend([
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::GENERIC_SECRET),
                        Attribute::Encrypt(false),
                        Attribute::Decrypt(false),
                        Attribute::Sign(true),
                        Attribute::Verify(true),
                        Attribute::Extractable(false),
                    ]);
                    Mechanism::GenericSecretKeyGen
                }
            };
            let handle = s
                .generate_key(&mechanism, &template)
                .map_err(p11("C_GenerateKey"))?;
            match check_value(s, handle) {
                Ok(fingerprint) => Ok(GeneratedKey { id, fingerprint }),
                Err(e) => {
                    // Recovery order: a key we cannot describe is not kept.
                    let _ = s.destroy_object(handle);
                    Err(e)
                }
            }
        })
    }

    fn find_key(&self, id: &KeyId) -> HsmResult<Option<String>> {
        self.with_session("find key", |s| {
            let Some(handle) = find_secret(s, id)? else {
                return Ok(None);
            };
            let attrs = s
                .get_attributes(handle, &[AttributeType::Label])
                .map_err(p11("C_GetAttributeValue"))?;
            let label = attrs.into_iter().find_map(|a| {
                if let Attribute::Label(l) = a {
                    Some(l)
                } else {
                    None
                }
            });
            Ok(Some(
                String::from_utf8_lossy(&label.unwrap_or_default()).into_owned(),
            ))
        })
    }

    fn destroy_key(&self, id: &KeyId) -> HsmResult<()> {
        self.with_session("destroy key", |s| {
            let handle = require_secret(s, id)?;
            s.destroy_object(handle).map_err(p11("C_DestroyObject"))
        })
    }

    fn fingerprint(&self, id: &KeyId) -> HsmResult<Fingerprint> {
        self.with_session("fingerprint", |s| check_value(s, require_secret(s, id)?))
    }

    fn wrap_key(
        &self,
        id: &KeyId,
        wrapping_key_der: &[u8],
        alg: WrapAlgorithm,
    ) -> HsmResult<Vec<u8>> {
        let caps = self.capabilities();
        if !caps.supports(alg) {
            let supported = caps
                .wrap_algorithms
                .iter()
                .map(|a| a.aws_name())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(HsmError::UnsupportedWrap {
                alg,
                supported: if supported.is_empty() {
                    "none".into()
                } else {
                    supported
                },
            });
        }
        let rsa = rsa_spki::parse(wrapping_key_der).map_err(HsmError::BadWrappingKey)?;
        self.with_session("wrap key", |s| {
            let target = require_secret(s, id)?;
            let public = s
                .create_object(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::Token(false),
                    Attribute::Private(false),
                    Attribute::Modulus(rsa.modulus.clone()),
                    Attribute::PublicExponent(rsa.exponent.clone()),
                    Attribute::Wrap(true),
                    Attribute::Encrypt(false),
                    Attribute::Verify(false),
                ])
                .map_err(p11("C_CreateObject(wrapping key)"))?;
            let result = wrap_with(s, alg, public, target);
            let _ = s.destroy_object(public);
            result
        })
    }

    fn encrypt(&self, id: &KeyId, plaintext: &[u8], aad: &[u8]) -> HsmResult<Vec<u8>> {
        self.with_session("encrypt", |s| {
            let key = require_secret(s, id)?;
            let mut iv = [0u8; GCM_IV_LEN];
            s.generate_random_slice(&mut iv)
                .map_err(p11("C_GenerateRandom"))?;
            let mut iv_param = iv;
            let params = GcmParams::new(&mut iv_param, aad, GCM_TAG_BITS.into()).map_err(|e| {
                HsmError::Operation {
                    op: "encrypt",
                    reason: e.to_string(),
                }
            })?;
            let ciphertext = s
                .encrypt(&Mechanism::AesGcm(params), key, plaintext)
                .map_err(p11("C_Encrypt(AES-GCM)"))?;
            let mut out = iv.to_vec();
            out.extend_from_slice(&ciphertext);
            Ok(out)
        })
    }

    fn decrypt(&self, id: &KeyId, sealed: &[u8], aad: &[u8]) -> HsmResult<SecretSlice<u8>> {
        if sealed.len() < GCM_IV_LEN + 16 {
            return Err(HsmError::Operation {
                op: "decrypt",
                reason: "ciphertext too short".into(),
            });
        }
        self.with_session("decrypt", |s| {
            let key = require_secret(s, id)?;
            let mut iv = [0u8; GCM_IV_LEN];
            iv.copy_from_slice(&sealed[..GCM_IV_LEN]);
            let params = GcmParams::new(&mut iv, aad, GCM_TAG_BITS.into()).map_err(|e| {
                HsmError::Operation {
                    op: "decrypt",
                    reason: e.to_string(),
                }
            })?;
            let plain = s
                .decrypt(&Mechanism::AesGcm(params), key, &sealed[GCM_IV_LEN..])
                .map_err(p11("C_Decrypt(AES-GCM)"))?;
            Ok(SecretSlice::from(plain))
        })
    }

    fn hmac_sign(&self, id: &KeyId, data: &[u8]) -> HsmResult<Vec<u8>> {
        self.with_session("HMAC sign", |s| {
            s.sign(&Mechanism::Sha256Hmac, require_secret(s, id)?, data)
                .map_err(p11("C_Sign(HMAC)"))
        })
    }

    fn hmac_verify(&self, id: &KeyId, data: &[u8], mac: &[u8]) -> HsmResult<bool> {
        self.with_session("HMAC verify", |s| {
            let key = require_secret(s, id)?;
            match s.verify(&Mechanism::Sha256Hmac, key, data, mac) {
                Ok(()) => Ok(true),
                Err(P11Error::Pkcs11(
                    RvError::SignatureInvalid | RvError::SignatureLenRange,
                    _,
                )) => Ok(false),
                Err(e) => Err(p11("C_Verify(HMAC)")(e)),
            }
        })
    }

    fn random(&self, len: usize) -> HsmResult<Vec<u8>> {
        self.with_session("random", |s| {
            let mut out = vec![0u8; len];
            s.generate_random_slice(&mut out)
                .map_err(p11("C_GenerateRandom"))?;
            Ok(out)
        })
    }

    fn read_anchors(&self, name: &str) -> HsmResult<Vec<Vec<u8>>> {
        self.with_session("read anchor", |s| {
            let mut values = Vec::new();
            for handle in find_anchors(s, name)? {
                let attrs = s
                    .get_attributes(handle, &[AttributeType::Value])
                    .map_err(p11("C_GetAttributeValue"))?;
                values.extend(attrs.into_iter().find_map(|a| {
                    if let Attribute::Value(v) = a {
                        Some(v)
                    } else {
                        None
                    }
                }));
            }
            Ok(values)
        })
    }

    fn write_anchor(&self, name: &str, value: &[u8]) -> HsmResult<()> {
        // Tokens may make CKA_VALUE of data objects read-only (SoftHSM does): create the new
        // value first, then destroy the old ones, so a crash in between leaves both, never none.
        self.with_session("write anchor", |s| {
            let old = find_anchors(s, name)?;
            s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Application(APPLICATION.to_vec()),
                Attribute::Label(name.as_bytes().to_vec()),
                Attribute::Value(value.to_vec()),
            ])
            .map_err(p11("C_CreateObject(anchor)"))?;
            for handle in old {
                s.destroy_object(handle)
                    .map_err(p11("C_DestroyObject(old anchor)"))?;
            }
            Ok(())
        })
    }

    fn remove_anchors(&self, name: &str) -> HsmResult<()> {
        self.with_session("remove anchor", |s| {
            for handle in find_anchors(s, name)? {
                s.destroy_object(handle)
                    .map_err(p11("C_DestroyObject(anchor)"))?;
            }
            Ok(())
        })
    }

    fn fault(&self) -> Option<String> {
        lock(&self.fault).clone()
    }

    fn reset(&self) {
        // C_Finalize must not run while another call is inside the module: wait until no call
        // is in flight, and hold the count's lock so that none starts until the context is gone.
        let mut in_flight = lock(&self.in_flight);
        while *in_flight > 0 {
            in_flight = self
                .slot_free
                .wait(in_flight)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let mut slot = self
            .context
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ctx) = slot.take() {
            lock(&ctx.idle).clear();
            let _ = ctx.pkcs11.clone().finalize();
        }
        drop(slot);
        drop(in_flight);
    }
}
