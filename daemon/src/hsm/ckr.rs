//! PKCS#11 return codes as the appliance's own type, so an error keeps the token's answer and
//! callers can match on it without importing cryptoki.

/// A PKCS#11 return code (`CK_RV`), as the token gave it. Displays as its name and value,
/// e.g. `CKR_GENERAL_ERROR (0x5)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ckr(u64);

/// The first vendor-defined code; everything from here up is the vendor's.
const VENDOR_DEFINED: u64 = 0x8000_0000;

/// One list of the standard codes (those cryptoki 0.12 knows: PKCS#11 v2.40 and some of v3.0):
/// each becomes a constant and a row of the name table, so the two cannot disagree.
macro_rules! codes {
    ($($name:ident = $code:expr,)*) => {
        impl Ckr {
            $(pub const $name: Ckr = Ckr($code);)*
        }
        /// `(code, name)`, ascending by code.
        const NAMES: &[(u64, &str)] = &[$(($code, concat!("CKR_", stringify!($name))),)*];
    };
}

codes! {
    CANCEL = 0x1,
    HOST_MEMORY = 0x2,
    SLOT_ID_INVALID = 0x3,
    GENERAL_ERROR = 0x5,
    FUNCTION_FAILED = 0x6,
    ARGUMENTS_BAD = 0x7,
    NO_EVENT = 0x8,
    NEED_TO_CREATE_THREADS = 0x9,
    CANT_LOCK = 0xa,
    ATTRIBUTE_READ_ONLY = 0x10,
    ATTRIBUTE_SENSITIVE = 0x11,
    ATTRIBUTE_TYPE_INVALID = 0x12,
    ATTRIBUTE_VALUE_INVALID = 0x13,
    ACTION_PROHIBITED = 0x1b,
    DATA_INVALID = 0x20,
    DATA_LEN_RANGE = 0x21,
    DEVICE_ERROR = 0x30,
    DEVICE_MEMORY = 0x31,
    DEVICE_REMOVED = 0x32,
    ENCRYPTED_DATA_INVALID = 0x40,
    ENCRYPTED_DATA_LEN_RANGE = 0x41,
    FUNCTION_CANCELED = 0x50,
    FUNCTION_NOT_PARALLEL = 0x51,
    FUNCTION_NOT_SUPPORTED = 0x54,
    KEY_HANDLE_INVALID = 0x60,
    KEY_SIZE_RANGE = 0x62,
    KEY_TYPE_INCONSISTENT = 0x63,
    KEY_NOT_NEEDED = 0x64,
    KEY_CHANGED = 0x65,
    KEY_NEEDED = 0x66,
    KEY_INDIGESTIBLE = 0x67,
    KEY_FUNCTION_NOT_PERMITTED = 0x68,
    KEY_NOT_WRAPPABLE = 0x69,
    KEY_UNEXTRACTABLE = 0x6a,
    MECHANISM_INVALID = 0x70,
    MECHANISM_PARAM_INVALID = 0x71,
    OBJECT_HANDLE_INVALID = 0x82,
    OPERATION_ACTIVE = 0x90,
    OPERATION_NOT_INITIALIZED = 0x91,
    PIN_INCORRECT = 0xa0,
    PIN_INVALID = 0xa1,
    PIN_LEN_RANGE = 0xa2,
    PIN_EXPIRED = 0xa3,
    PIN_LOCKED = 0xa4,
    SESSION_CLOSED = 0xb0,
    SESSION_COUNT = 0xb1,
    SESSION_HANDLE_INVALID = 0xb3,
    SESSION_PARALLEL_NOT_SUPPORTED = 0xb4,
    SESSION_READ_ONLY = 0xb5,
    SESSION_EXISTS = 0xb6,
    SESSION_READ_ONLY_EXISTS = 0xb7,
    SESSION_READ_WRITE_SO_EXISTS = 0xb8,
    SIGNATURE_INVALID = 0xc0,
    SIGNATURE_LEN_RANGE = 0xc1,
    TEMPLATE_INCOMPLETE = 0xd0,
    TEMPLATE_INCONSISTENT = 0xd1,
    TOKEN_NOT_PRESENT = 0xe0,
    TOKEN_NOT_RECOGNIZED = 0xe1,
    TOKEN_WRITE_PROTECTED = 0xe2,
    UNWRAPPING_KEY_HANDLE_INVALID = 0xf0,
    UNWRAPPING_KEY_SIZE_RANGE = 0xf1,
    UNWRAPPING_KEY_TYPE_INCONSISTENT = 0xf2,
    USER_ALREADY_LOGGED_IN = 0x100,
    USER_NOT_LOGGED_IN = 0x101,
    USER_PIN_NOT_INITIALIZED = 0x102,
    USER_TYPE_INVALID = 0x103,
    USER_ANOTHER_ALREADY_LOGGED_IN = 0x104,
    USER_TOO_MANY_TYPES = 0x105,
    WRAPPED_KEY_INVALID = 0x110,
    WRAPPED_KEY_LEN_RANGE = 0x112,
    WRAPPING_KEY_HANDLE_INVALID = 0x113,
    WRAPPING_KEY_SIZE_RANGE = 0x114,
    WRAPPING_KEY_TYPE_INCONSISTENT = 0x115,
    RANDOM_SEED_NOT_SUPPORTED = 0x120,
    RANDOM_NO_RNG = 0x121,
    DOMAIN_PARAMS_INVALID = 0x130,
    CURVE_NOT_SUPPORTED = 0x140,
    BUFFER_TOO_SMALL = 0x150,
    SAVED_STATE_INVALID = 0x160,
    INFORMATION_SENSITIVE = 0x170,
    STATE_UNSAVEABLE = 0x180,
    CRYPTOKI_NOT_INITIALIZED = 0x190,
    CRYPTOKI_ALREADY_INITIALIZED = 0x191,
    MUTEX_BAD = 0x1a0,
    MUTEX_NOT_LOCKED = 0x1a1,
    NEW_PIN_MODE = 0x1b0,
    NEXT_OTP = 0x1b1,
    EXCEEDED_MAX_ITERATIONS = 0x1b5,
    FIPS_SELF_TEST_FAILED = 0x1b6,
    LIBRARY_LOAD_FAILED = 0x1b7,
    PIN_TOO_WEAK = 0x1b8,
    PUBLIC_KEY_INVALID = 0x1b9,
    FUNCTION_REJECTED = 0x200,
}

impl Ckr {
    pub const fn new(code: u64) -> Self {
        Self(code)
    }

    /// The numeric value.
    pub const fn code(self) -> u64 {
        self.0
    }

    /// The standard name (`CKR_…`), or `None` for a vendor-defined or unknown code.
    pub fn name(self) -> Option<&'static str> {
        NAMES
            .binary_search_by_key(&self.0, |&(code, _)| code)
            .ok()
            .and_then(|i| NAMES.get(i))
            .map(|&(_, name)| name)
    }

    /// Every code with a standard name, ascending.
    pub fn standard() -> impl Iterator<Item = Ckr> {
        NAMES.iter().map(|&(code, _)| Ckr(code))
    }
}

impl std::fmt::Display for Ckr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({:#x})", self.0),
            None if self.0 >= VENDOR_DEFINED => write!(f, "CKR_VENDOR_DEFINED ({:#x})", self.0),
            None => write!(f, "unknown PKCS#11 return code {:#x}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_ascending_and_unique() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn display_names_the_code_and_its_value() {
        assert_eq!(Ckr::GENERAL_ERROR.to_string(), "CKR_GENERAL_ERROR (0x5)");
        assert_eq!(
            Ckr::ENCRYPTED_DATA_INVALID.to_string(),
            "CKR_ENCRYPTED_DATA_INVALID (0x40)"
        );
        assert_eq!(
            Ckr::new(0x8000_0001).to_string(),
            "CKR_VENDOR_DEFINED (0x80000001)"
        );
        assert_eq!(Ckr::new(0x7777).name(), None);
    }
}
