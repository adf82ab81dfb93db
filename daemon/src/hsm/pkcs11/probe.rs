//! What the token can do, found by trying it at start-up, never assumed from a vendor name:
//! a throwaway session AES key wrapped under a throwaway RSA-2048 key with each AWS algorithm.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use tracing::{debug, warn};

use super::Pkcs11Hsm;
use super::error::{p11, short};
use super::wrapping::{session_aes_template, wrap_with};
use crate::hsm::{Capabilities, HsmResult, WrapAlgorithm};

pub(super) fn probe(hsm: &Pkcs11Hsm) -> HsmResult<Capabilities> {
    hsm.with_session("probe", |call| {
        let s = call.session;
        let public = [
            Attribute::Token(false),
            Attribute::ModulusBits(2048.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
            Attribute::Wrap(true),
            Attribute::Encrypt(true),
        ];
        let private = [
            Attribute::Token(false),
            Attribute::Sensitive(true),
            Attribute::Unwrap(true),
            Attribute::Decrypt(true),
        ];
        let (pub_key, priv_key) =
            match s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private) {
                Ok(pair) => pair,
                Err(e) => {
                    warn!(error = %short(&e), "the token cannot make an RSA key pair to probe wrapping; assuming no wrap support");
                    return Ok(Capabilities::default());
                }
            };
        let target = s
            .generate_key(&Mechanism::AesKeyGen, &session_aes_template(true))
            .map_err(p11("probe C_GenerateKey"))?;
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
