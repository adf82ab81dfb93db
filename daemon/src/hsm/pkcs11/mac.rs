//! HMAC-SHA-256 with the audit key: every audit record is sealed and checked inside the HSM.

use cryptoki::mechanism::Mechanism;

use super::Pkcs11Hsm;
use super::error::{p11, rv};
use crate::domain::keys::KeyId;
use crate::hsm::{Ckr, HsmResult};

pub(super) fn sign(hsm: &Pkcs11Hsm, id: &KeyId, data: &[u8]) -> HsmResult<Vec<u8>> {
    hsm.with_key("HMAC sign", id, |call, key| {
        call.session
            .sign(&Mechanism::Sha256Hmac, key, data)
            .map_err(p11("C_Sign(HMAC)"))
    })
}

/// `false` for a MAC that does not verify; an error only when the token fails.
pub(super) fn verify(hsm: &Pkcs11Hsm, id: &KeyId, data: &[u8], mac: &[u8]) -> HsmResult<bool> {
    hsm.with_key("HMAC verify", id, |call, key| {
        match call.session.verify(&Mechanism::Sha256Hmac, key, data, mac) {
            Ok(()) => Ok(true),
            Err(e) => match rv(&e) {
                Some(Ckr::SIGNATURE_INVALID | Ckr::SIGNATURE_LEN_RANGE) => Ok(false),
                _ => Err(p11("C_Verify(HMAC)")(e)),
            },
        }
    })
}
