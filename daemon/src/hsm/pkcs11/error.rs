//! cryptoki's errors as [`HsmError`]s that keep the return code, and what each code does to the
//! pool: nothing, evict the session, or drop the PKCS#11 context.

use cryptoki::error::{Error as P11Error, Rv, RvError};

use crate::hsm::{Ckr, HsmError};

/// How a failed call affects the pool.
pub(super) enum Damage {
    None,
    Session,
    Device,
}

pub(super) fn classify(ckr: Ckr) -> Damage {
    match ckr {
        Ckr::DEVICE_ERROR
        | Ckr::DEVICE_REMOVED
        | Ckr::TOKEN_NOT_PRESENT
        | Ckr::TOKEN_NOT_RECOGNIZED
        | Ckr::CRYPTOKI_NOT_INITIALIZED => Damage::Device,
        // Not GENERAL_ERROR: SoftHSM returns it for a failed GCM tag check, a bad input that
        // must not tear down the context.
        Ckr::SESSION_HANDLE_INVALID | Ckr::SESSION_CLOSED | Ckr::USER_NOT_LOGGED_IN => {
            Damage::Session
        }
        _ => Damage::None,
    }
}

/// What an error already classified does to the pool.
pub(super) fn damage_of(e: &HsmError) -> Damage {
    match e {
        HsmError::Device { .. } => Damage::Device,
        HsmError::SessionLost { .. } => Damage::Session,
        _ => Damage::None,
    }
}

/// The return code cryptoki decoded. cryptoki keeps only its own enum, so the numeric value is
/// found by decoding each standard code the way cryptoki does (an error path: 93 comparisons).
pub(super) fn ckr_of(rv: RvError) -> Ckr {
    match rv {
        RvError::VendorDefined(code) | RvError::UnknownErrorCode(code) => Ckr::new(widen(code)),
        known => Ckr::standard()
            .find(|ckr| {
                std::ffi::c_ulong::try_from(ckr.code())
                    .is_ok_and(|code| Rv::from(code) == Rv::Error(known))
            })
            // Unreachable while the table lists every code cryptoki knows (a test checks).
            .unwrap_or(Ckr::GENERAL_ERROR),
    }
}

#[allow(
    clippy::useless_conversion,
    reason = "CK_RV is a C unsigned long: u64 here, u32 on other targets"
)]
fn widen(code: std::ffi::c_ulong) -> u64 {
    code.into()
}

/// A cryptoki error as an [`HsmError`] for operation `op`.
pub(super) fn p11(op: &'static str) -> impl Fn(P11Error) -> HsmError {
    move |e| match e {
        P11Error::Pkcs11(rv, _) => {
            let ckr = ckr_of(rv);
            match classify(ckr) {
                Damage::Device => HsmError::Device { op, ckr },
                Damage::Session => HsmError::SessionLost { op, ckr },
                Damage::None => HsmError::Pkcs11 { op, ckr },
            }
        }
        other => HsmError::Operation {
            op,
            reason: other.to_string(),
        },
    }
}

/// The return code of a cryptoki error, if it is one. For branches on a code the token may
/// legitimately return (already logged in, a signature that does not verify).
pub(super) fn rv(e: &P11Error) -> Option<Ckr> {
    match e {
        P11Error::Pkcs11(rv, _) => Some(ckr_of(*rv)),
        _ => None,
    }
}

/// cryptoki's messages quote the whole PKCS#11 spec paragraph; keep the code and function.
pub(super) fn short(e: &P11Error) -> String {
    match e {
        P11Error::Pkcs11(rv, function) => format!("{function}: {}", ckr_of(*rv)),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_cryptoki_knows_has_its_name_and_value() {
        for ckr in Ckr::standard() {
            let code = std::ffi::c_ulong::try_from(ckr.code()).unwrap_or_default();
            let Rv::Error(rv) = Rv::from(code) else {
                unreachable!("{ckr} is not an error code");
            };
            assert!(
                !matches!(rv, RvError::UnknownErrorCode(_)),
                "cryptoki does not know {ckr}"
            );
            assert_eq!(ckr_of(rv), ckr, "{rv:?}");
        }
        assert_eq!(
            ckr_of(RvError::GeneralError).to_string(),
            "CKR_GENERAL_ERROR (0x5)"
        );
        assert_eq!(
            ckr_of(RvError::VendorDefined(0x8000_0042)),
            Ckr::new(0x8000_0042)
        );
    }

    #[test]
    fn errors_keep_the_code_and_say_what_it_does_to_the_pool() {
        let device = p11("C_Encrypt")(P11Error::Pkcs11(
            RvError::DeviceRemoved,
            cryptoki::context::Function::Encrypt,
        ));
        assert!(matches!(
            device,
            HsmError::Device {
                op: "C_Encrypt",
                ckr: Ckr::DEVICE_REMOVED
            }
        ));
        assert!(device.is_device_fault());
        let general = p11("C_Decrypt")(P11Error::Pkcs11(
            RvError::GeneralError,
            cryptoki::context::Function::Decrypt,
        ));
        assert_eq!(general.ckr(), Some(Ckr::GENERAL_ERROR));
        assert!(matches!(damage_of(&general), Damage::None));
        assert_eq!(
            general.to_string(),
            "HSM C_Decrypt failed: CKR_GENERAL_ERROR (0x5)"
        );
        let session = p11("C_Sign")(P11Error::Pkcs11(
            RvError::SessionHandleInvalid,
            cryptoki::context::Function::Sign,
        ));
        assert!(matches!(damage_of(&session), Damage::Session));
    }
}
