//! Export for AWS KMS import: C_WrapKey of a customer key under the RSA public key AWS gave,
//! with RSA-OAEP or the composed RSA_AES_KEY_WRAP, entirely inside the HSM.

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::Pkcs11Hsm;
use super::error::p11;
use crate::domain::keys::KeyId;
use crate::hsm::{Hsm, HsmError, HsmResult, WrapAlgorithm, rsa_spki};

pub(super) fn wrap(
    hsm: &Pkcs11Hsm,
    id: &KeyId,
    wrapping_key_der: &[u8],
    alg: WrapAlgorithm,
) -> HsmResult<Vec<u8>> {
    let caps = hsm.capabilities();
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
    hsm.with_key("wrap key", id, |call, target| {
        let s = call.session;
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

/// A session-only AES-256 key (the probe's target and RSA-AES's ephemeral key).
pub(super) fn session_aes_template(wrap: bool) -> Vec<Attribute> {
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
pub(super) fn wrap_with(
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
