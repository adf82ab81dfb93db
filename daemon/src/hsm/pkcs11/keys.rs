//! Secret keys on the token: generate with every usage attribute stated, find by CKA_ID,
//! destroy, and the check value that fingerprints a key without revealing it.

use std::collections::{BTreeSet, HashMap};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::Pkcs11Hsm;
use super::error::p11;
use crate::domain::keys::{Fingerprint, KeyId, KeyPurpose};
use crate::hsm::{GeneratedKey, HsmError, HsmResult};

pub(super) fn generate(
    hsm: &Pkcs11Hsm,
    purpose: KeyPurpose,
    label: &str,
    id: KeyId,
) -> HsmResult<GeneratedKey> {
    hsm.with_session("generate key", |call| {
        let s = call.session;
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
        // AES for sealing and export; a generic secret for the audit HMAC.
        let (key_type, mechanism, ciphers, macs) = match purpose {
            KeyPurpose::Storage | KeyPurpose::Customer => {
                (KeyType::AES, Mechanism::AesKeyGen, true, false)
            }
            KeyPurpose::Audit => (
                KeyType::GENERIC_SECRET,
                Mechanism::GenericSecretKeyGen,
                false,
                true,
            ),
        };
        template.extend([
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(key_type),
            Attribute::Encrypt(ciphers),
            Attribute::Decrypt(ciphers),
            Attribute::Sign(macs),
            Attribute::Verify(macs),
            // Only customer keys may leave, and only wrapped.
            Attribute::Extractable(purpose == KeyPurpose::Customer),
        ]);
        let handle = s
            .generate_key(&mechanism, &template)
            .map_err(p11("C_GenerateKey"))?;
        match check_value(s, handle) {
            Ok(fingerprint) => {
                call.remember(&id, handle);
                Ok(GeneratedKey { id, fingerprint })
            }
            Err(e) => {
                // Recovery order: a key we cannot describe is not kept.
                let _ = s.destroy_object(handle);
                Err(e)
            }
        }
    })
}

/// Always asks the token, never the cache: the health check relies on this to see a key that
/// is gone (a zeroized or replaced token).
pub(super) fn find_label(hsm: &Pkcs11Hsm, id: &KeyId) -> HsmResult<Option<String>> {
    hsm.with_session("find key", |call| {
        let Some(handle) = call.find_secret(id)? else {
            return Ok(None);
        };
        let label = attribute(call.session, handle, AttributeType::Label, |a| match a {
            Attribute::Label(l) => Some(l),
            _ => None,
        })?;
        Ok(Some(
            String::from_utf8_lossy(&label.unwrap_or_default()).into_owned(),
        ))
    })
}

/// One search for every secret key, then each one's CKA_ID. Objects without a 16-byte id are
/// not Keyward keys and are left out. Each handle is cached on the way, so the first operation
/// on a key after start-up needs no search of its own.
pub(super) fn ids(hsm: &Pkcs11Hsm) -> HsmResult<BTreeSet<KeyId>> {
    hsm.with_session("list keys", |call| {
        let since = call.cache_epoch();
        let mut found: HashMap<KeyId, Option<ObjectHandle>> = HashMap::new();
        for handle in call.search(&[Attribute::Class(ObjectClass::SECRET_KEY)])? {
            let id = attribute(call.session, handle, AttributeType::Id, |a| match a {
                Attribute::Id(id) => <[u8; 16]>::try_from(id).ok(),
                _ => None,
            })?;
            if let Some(id) = id {
                // Two objects under one id: cache neither (an operation on it reports them).
                found
                    .entry(KeyId(id))
                    .and_modify(|h| *h = None)
                    .or_insert(Some(handle));
            }
        }
        call.remember_listed(since, &found);
        Ok(found.into_keys().collect())
    })
}

pub(super) fn destroy(hsm: &Pkcs11Hsm, id: &KeyId) -> HsmResult<()> {
    hsm.with_key("destroy key", id, |call, handle| {
        call.session
            .destroy_object(handle)
            .map_err(p11("C_DestroyObject"))?;
        call.forget(id);
        Ok(())
    })
}

pub(super) fn fingerprint(hsm: &Pkcs11Hsm, id: &KeyId) -> HsmResult<Fingerprint> {
    hsm.with_key("fingerprint", id, |call, key| {
        check_value(call.session, key)
    })
}

pub(super) fn random(hsm: &Pkcs11Hsm, len: usize) -> HsmResult<Vec<u8>> {
    hsm.with_session("random", |call| {
        let mut out = vec![0u8; len];
        call.session
            .generate_random_slice(&mut out)
            .map_err(p11("C_GenerateRandom"))?;
        Ok(out)
    })
}

/// One attribute of `object`, picked out of cryptoki's list by `pick`; `None` when the token
/// does not return it.
pub(super) fn attribute<T>(
    s: &Session,
    object: ObjectHandle,
    which: AttributeType,
    pick: impl Fn(Attribute) -> Option<T>,
) -> HsmResult<Option<T>> {
    let attrs = s
        .get_attributes(object, &[which])
        .map_err(p11("C_GetAttributeValue"))?;
    Ok(attrs.into_iter().find_map(pick))
}

/// AES-ECB of a zero block for AES keys; HMAC of a zero block for MAC keys.
fn check_value(s: &Session, key: ObjectHandle) -> HsmResult<Fingerprint> {
    let key_type = attribute(s, key, AttributeType::KeyType, |a| match a {
        Attribute::KeyType(t) => Some(t),
        _ => None,
    })?
    .ok_or(HsmError::Operation {
        op: "read key type",
        reason: "the token did not return CKA_KEY_TYPE".into(),
    })?;
    let zeros = [0u8; 16];
    let block = if key_type == KeyType::AES {
        s.encrypt(&Mechanism::AesEcb, key, &zeros)
            .map_err(p11("C_Encrypt(ECB check value)"))?
    } else {
        s.sign(&Mechanism::Sha256Hmac, key, &zeros)
            .map_err(p11("C_Sign(check value)"))?
    };
    Ok(Fingerprint::from_check_block(&block))
}
