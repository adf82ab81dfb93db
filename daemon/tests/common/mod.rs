//! One SoftHSMv2 token per test process: SoftHSM reads its config once per process, and one
//! PKCS#11 context serves every test thread, as in the daemon.

use std::sync::{Arc, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;

use keyward_daemon::hsm::Hsm;
use keyward_daemon::hsm::pkcs11::{Pkcs11Hsm, Pkcs11Settings};
use keyward_daemon::secret_file::read_secret;
use keyward_hsm_sim::{ProvisionOptions, Provisioned, provision};

pub struct SharedToken {
    pub provisioned: Provisioned,
    pub hsm: Arc<Pkcs11Hsm>,
    _dir: tempfile::TempDir,
}

pub fn token() -> &'static SharedToken {
    static TOKEN: OnceLock<SharedToken> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let provisioned = provision(&ProvisionOptions::new(dir.path().join("hsm")))
            .expect("provision a SoftHSMv2 token (is softhsm2 installed? run scripts/test.sh)");
        let pin = read_secret(&provisioned.user_pin_file, "PIN file").expect("read PIN");
        let hsm = Pkcs11Hsm::open(Pkcs11Settings {
            module: provisioned.module.clone(),
            token_label: provisioned.label.clone(),
            pin,
            sessions: 1,
        })
        .expect("open the token");
        SharedToken {
            provisioned,
            hsm: Arc::new(hsm),
            _dir: dir,
        }
    })
}

/// The pool gives the token one caller at a time (`hsm.sessions = 1`). A test that opens raw
/// cryptoki sessions beside it, resets it, or counts its object searches needs the token to
/// itself: it holds [`exclusive`], and every other test holds [`shared`].
static TOKEN_USE: std::sync::RwLock<()> = std::sync::RwLock::new(());

#[allow(dead_code, reason = "not every test binary uses it")]
pub fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    TOKEN_USE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[allow(dead_code, reason = "not every test binary uses it")]
pub fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    TOKEN_USE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[allow(dead_code, reason = "not every test binary uses it")]
pub fn hsm() -> &'static dyn Hsm {
    token().hsm.as_ref()
}

/// A raw cryptoki session on the same token, to look at objects as the HSM holds them, or to
/// change them behind the pool's back (it is read-write). Hold [`exclusive`] while using it,
/// and across every `Hsm` call in the same test.
#[allow(dead_code, reason = "not every test binary uses it")]
pub fn raw_session() -> cryptoki::session::Session {
    let t = token();
    let ctx = Pkcs11::new(&t.provisioned.module).expect("load the module");
    let _ = ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = keyward_hsm_sim::find_slot(&ctx, &t.provisioned.label)
        .expect("slots")
        .expect("the token");
    let s = ctx.open_rw_session(slot).expect("open a session");
    let pin = read_secret(&t.provisioned.user_pin_file, "PIN").expect("PIN");
    match s.login(UserType::User, Some(&pin)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => panic!("login: {e}"),
    }
    s
}

/// What SoftHSM leaves when a process is killed inside C_CreateObject of a data object: the
/// object stored with its class and defaults, none of the template written.
#[allow(dead_code, reason = "not every test binary uses it")]
pub fn create_torn_object(s: &cryptoki::session::Session) -> cryptoki::object::ObjectHandle {
    use cryptoki::object::{Attribute, ObjectClass};
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(true),
    ])
    .expect("create an empty data object")
}
