//! Parsing the RSA wrapping public key AWS returns (DER SubjectPublicKeyInfo).

use spki::SubjectPublicKeyInfoRef;
use spki::der::Decode;

/// rsaEncryption, 1.2.840.113549.1.1.1
const RSA_ENCRYPTION: spki::ObjectIdentifier =
    spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The modulus and public exponent, big-endian without leading zeros.
pub struct RsaPublic {
    pub modulus: Vec<u8>,
    pub exponent: Vec<u8>,
}

impl RsaPublic {
    pub fn bits(&self) -> usize {
        let lead = self
            .modulus
            .first()
            .map_or(0, |b| 8 - b.leading_zeros() as usize);
        self.modulus.len().saturating_sub(1) * 8 + lead
    }
}

pub fn parse(der: &[u8]) -> Result<RsaPublic, String> {
    let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|e| e.to_string())?;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(format!(
            "algorithm {} is not rsaEncryption",
            spki.algorithm.oid
        ));
    }
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or("the key bit string has unused bits")?;
    let key = pkcs1::RsaPublicKey::from_der(key_bytes).map_err(|e| e.to_string())?;
    let public = RsaPublic {
        modulus: key.modulus.as_bytes().to_vec(),
        exponent: key.public_exponent.as_bytes().to_vec(),
    };
    if public.bits() < 2048 {
        return Err(format!(
            "the key has {} bits; AWS wrapping keys have at least 2048",
            public.bits()
        ));
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_is_rejected_with_a_reason() {
        assert!(parse(b"not der").is_err());
        assert!(parse(&[]).is_err());
    }
}
