//! The development HSM: provisions SoftHSMv2 tokens in a private directory, reports on them and
//! zeroizes them the way a tamper event would. Tokens are always found by label, never by slot
//! index, because SoftHSM renumbers its slots.
//!
//! SoftHSM reads its configuration file from `SOFTHSM2_CONF` when the module is initialised, and
//! a process holds one module state. [`use_config`] points this process at a directory; the CLI
//! calls it first thing, and tests call [`provision`], which does it for them.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use keyward_secret_file::{create_private_dir, sync_dir, write_private};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// Where Debian and other distributions install the SoftHSMv2 PKCS#11 module.
const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
];

pub const CONF_FILE: &str = "softhsm2.conf";
pub const USER_PIN_FILE: &str = "user.pin";
pub const SO_PIN_FILE: &str = "so.pin";
pub const TOKENS_DIR: &str = "tokens";
/// Where [`detach`] moves the token directory while the token is unplugged.
pub const DETACHED_DIR: &str = "tokens.detached";
pub const HSM_TABLE_FILE: &str = "hsm.toml";

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(
        "SoftHSMv2 is not installed: no libsofthsm2.so in {candidates}; install it with 'apt-get install softhsm2'"
    )]
    ModuleMissing { candidates: String },
    #[error("{dir} already holds a provisioned token; pass --force to wipe it and start again")]
    AlreadyProvisioned { dir: PathBuf },
    #[error(
        "{dir} holds no provisioned token (no {CONF_FILE}); run 'keyward-hsm-sim init --dir {dir}' first"
    )]
    NotProvisioned { dir: PathBuf },
    #[error(
        "the token in {dir} is already detached ({DETACHED_DIR} exists); run 'keyward-hsm-sim attach --dir {dir}' to plug it back"
    )]
    AlreadyDetached { dir: PathBuf },
    #[error("the token in {dir} is not detached (no {DETACHED_DIR}); nothing to attach")]
    NotDetached { dir: PathBuf },
    #[error(
        "{dir} already has a non-empty {TOKENS_DIR} directory; move it away before attaching the detached token"
    )]
    TokenDirInTheWay { dir: PathBuf },
    #[error("no token labelled '{label}' in {dir}")]
    TokenNotFound { label: String, dir: PathBuf },
    #[error("SoftHSM offers no free slot to initialise a token in")]
    NoFreeSlot,
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    SecretFile(#[from] keyward_secret_file::SecretFileError),
    #[error("PKCS#11 {what}: {source}")]
    Pkcs11 {
        what: &'static str,
        #[source]
        source: cryptoki::error::Error,
    },
}

type Result<T, E = SimError> = std::result::Result<T, E>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SimError {
    let what = what.into();
    move |source| SimError::Io { what, source }
}

fn p11(what: &'static str) -> impl FnOnce(cryptoki::error::Error) -> SimError {
    move |source| SimError::Pkcs11 { what, source }
}

/// A provisioned development token: everything the daemon's `[hsm]` table needs.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub dir: PathBuf,
    pub module: PathBuf,
    pub conf: PathBuf,
    pub label: String,
    pub user_pin_file: PathBuf,
    pub so_pin_file: PathBuf,
}

impl Provisioned {
    /// The `[hsm]` table that, pasted into keywardd's config, points it at this token.
    pub fn hsm_table(&self) -> String {
        format!(
            "[hsm]\nmodule = {module:?}\ntoken_label = {label:?}\npin_file = {pin:?}\n# SoftHSMv2 2.6.1 is not safe under concurrent calls (SoftHSMv2 issue #688).\nsessions = 1\n\n[hsm.module_env]\nSOFTHSM2_CONF = {conf:?}\n",
            module = self.module.display().to_string(),
            label = self.label,
            pin = self.user_pin_file.display().to_string(),
            conf = self.conf.display().to_string(),
        )
    }
}

/// Options for [`provision`].
#[derive(Debug, Clone)]
pub struct ProvisionOptions {
    pub dir: PathBuf,
    pub label: String,
    pub force: bool,
    /// The PKCS#11 module; found among the usual install paths when `None`.
    pub module: Option<PathBuf>,
}

impl ProvisionOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            label: "keyward".into(),
            force: false,
            module: None,
        }
    }
}

/// Writes the private `softhsm2.conf` that points SoftHSMv2 at the token directory `tokens`
/// (also for a token directory copied from elsewhere, which must be pointed at anew).
pub fn write_conf(conf: &Path, tokens: &Path) -> Result<()> {
    let conf_text = format!(
        "# Written by keyward-hsm-sim: a private SoftHSMv2 token directory.\n\
         directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        tokens.display()
    );
    write_private(conf, conf_text.as_bytes(), "SoftHSM config file")?;
    Ok(())
}

/// Finds the SoftHSMv2 module among the paths distributions install it to.
pub fn find_module() -> Result<PathBuf> {
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| SimError::ModuleMissing {
            candidates: MODULE_CANDIDATES.join(", "),
        })
}

/// Points this process's SoftHSM at `conf`. SoftHSM reads `SOFTHSM2_CONF` at `C_Initialize`.
///
/// Call it before the process starts other threads that read the environment; the CLI calls it
/// first thing in `main`, and test harnesses once per process.
pub fn use_config(conf: &Path) {
    #[allow(
        unsafe_code,
        reason = "SoftHSM is configured only through its environment"
    )]
    // SAFETY: callers set this once, before the PKCS#11 module is loaded and before they start
    // threads that read the environment; Rust's own readers take the std environment lock.
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", conf);
    }
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    std::path::absolute(dir).map_err(io(format!("resolve {}", dir.display())))
}

fn random_pin(rng: &SystemRandom) -> Result<SecretString> {
    let mut raw = Zeroizing::new([0u8; 16]);
    rng.fill(raw.as_mut()).map_err(|_| SimError::Io {
        what: "read the system random generator".into(),
        source: std::io::Error::other("ring::rand failed"),
    })?;
    // Written straight into the one buffer that becomes the secret: no copy of the PIN is
    // left behind in a freed temporary.
    let mut text = String::with_capacity(2 * raw.len());
    for b in raw.iter() {
        for nibble in [b >> 4, b & 0xf] {
            text.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        }
    }
    Ok(SecretString::from(text))
}

fn read_pin(path: &Path) -> Result<SecretString> {
    Ok(keyward_secret_file::read_secret(path, "PIN file")?)
}

/// Overwrites every file under `dir` with zeros, syncs, and removes the tree.
fn zeroize_tree(dir: &Path) -> Result<usize> {
    let mut count = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry.map_err(io(format!("list {}", dir.display())))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(io(format!("stat {}", path.display())))?;
        if kind.is_dir() {
            count += zeroize_tree(&path)?;
            fs::remove_dir(&path).map_err(io(format!("remove {}", path.display())))?;
        } else {
            if kind.is_file() {
                let len = entry
                    .metadata()
                    .map_err(io(format!("stat {}", path.display())))?
                    .len();
                let mut f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io(format!("open {}", path.display())))?;
                let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
                f.write_all(&zeros)
                    .map_err(io(format!("zero {}", path.display())))?;
                f.sync_all()
                    .map_err(io(format!("sync {}", path.display())))?;
            }
            fs::remove_file(&path).map_err(io(format!("remove {}", path.display())))?;
            count += 1;
        }
    }
    Ok(count)
}

/// Provisions a SoftHSMv2 token in `opts.dir`: its own config, random SO and user PINs in 0600
/// files, a token initialised under `opts.label`. Points this process at the directory.
pub fn provision(opts: &ProvisionOptions) -> Result<Provisioned> {
    let dir = absolute(&opts.dir)?;
    let conf = dir.join(CONF_FILE);
    if conf.exists() && !opts.force {
        return Err(SimError::AlreadyProvisioned { dir });
    }
    let module = match &opts.module {
        Some(m) => m.clone(),
        None => find_module()?,
    };
    let tokens = dir.join(TOKENS_DIR);
    create_private_dir(&dir, "token store directory")?;
    if opts.force {
        zeroize_tree(&tokens)?;
    }
    create_private_dir(&tokens, "token directory")?;
    write_conf(&conf, &tokens)?;

    let rng = SystemRandom::new();
    let so_pin = random_pin(&rng)?;
    let user_pin = random_pin(&rng)?;
    use_config(&conf);
    let ctx = Pkcs11::new(&module).map_err(p11("load module"))?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(p11("C_Initialize"))?;
    let result = init_token(&ctx, &opts.label, &so_pin, &user_pin);
    let _ = ctx.finalize();
    result?;

    let so_pin_file = dir.join(SO_PIN_FILE);
    let user_pin_file = dir.join(USER_PIN_FILE);
    write_private(
        &so_pin_file,
        so_pin.expose_secret().as_bytes(),
        "SO PIN file",
    )?;
    write_private(
        &user_pin_file,
        user_pin.expose_secret().as_bytes(),
        "PIN file",
    )?;
    let provisioned = Provisioned {
        dir: dir.clone(),
        module,
        conf,
        label: opts.label.clone(),
        user_pin_file,
        so_pin_file,
    };
    write_private(
        &dir.join(HSM_TABLE_FILE),
        provisioned.hsm_table().as_bytes(),
        "[hsm] table file",
    )?;
    Ok(provisioned)
}

fn init_token(ctx: &Pkcs11, label: &str, so_pin: &AuthPin, user_pin: &AuthPin) -> Result<()> {
    let slot = ctx
        .get_slots_with_token()
        .map_err(p11("C_GetSlotList"))?
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|t| !t.token_initialized())
                .unwrap_or(false)
        })
        .ok_or(SimError::NoFreeSlot)?;
    ctx.init_token(slot, so_pin, label)
        .map_err(p11("C_InitToken"))?;
    // SoftHSM moves an initialised token to a new slot id: find it again, by label.
    let slot = find_slot(ctx, label)?.ok_or_else(|| SimError::TokenNotFound {
        label: label.into(),
        dir: PathBuf::new(),
    })?;
    let session = ctx.open_rw_session(slot).map_err(p11("C_OpenSession"))?;
    session
        .login(UserType::So, Some(so_pin))
        .map_err(p11("C_Login(SO)"))?;
    session.init_pin(user_pin).map_err(p11("C_InitPIN"))?;
    session.logout().map_err(p11("C_Logout"))?;
    Ok(())
}

/// The slot holding the initialised token with this label, if any.
pub fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Option<Slot>> {
    for slot in ctx
        .get_slots_with_initialized_token()
        .map_err(p11("C_GetSlotList"))?
    {
        let info = ctx.get_token_info(slot).map_err(p11("C_GetTokenInfo"))?;
        if info.label().trim_end() == label {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// What `status` reports about a provisioned token.
#[derive(Debug, Clone)]
pub struct TokenStatus {
    pub label: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    pub objects: usize,
    /// Free bytes on the file system holding the token files (SoftHSM reports no token memory).
    pub free_bytes: u64,
}

fn load_provisioned(dir: &Path, label: &str) -> Result<Provisioned> {
    let dir = absolute(dir)?;
    let conf = dir.join(CONF_FILE);
    if !conf.exists() {
        return Err(SimError::NotProvisioned { dir });
    }
    Ok(Provisioned {
        module: find_module()?,
        user_pin_file: dir.join(USER_PIN_FILE),
        so_pin_file: dir.join(SO_PIN_FILE),
        label: label.into(),
        conf,
        dir,
    })
}

/// Reports label, serial number, object count and free space of the token in `dir`.
pub fn status(dir: &Path, label: &str) -> Result<TokenStatus> {
    let p = load_provisioned(dir, label)?;
    use_config(&p.conf);
    let ctx = Pkcs11::new(&p.module).map_err(p11("load module"))?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(p11("C_Initialize"))?;
    let result = (|| {
        let slot = find_slot(&ctx, label)?.ok_or_else(|| SimError::TokenNotFound {
            label: label.into(),
            dir: p.dir.clone(),
        })?;
        let info = ctx.get_token_info(slot).map_err(p11("C_GetTokenInfo"))?;
        let session = ctx.open_ro_session(slot).map_err(p11("C_OpenSession"))?;
        let pin = read_pin(&p.user_pin_file)?;
        session
            .login(UserType::User, Some(&pin))
            .map_err(p11("C_Login"))?;
        let objects = session
            .find_objects(&[])
            .map_err(p11("C_FindObjects"))?
            .len();
        let _ = session.logout();
        let vfs =
            nix::sys::statvfs::statvfs(&p.dir.join(TOKENS_DIR)).map_err(|e| SimError::Io {
                what: "statvfs".into(),
                source: std::io::Error::from(e),
            })?;
        #[allow(
            clippy::useless_conversion,
            reason = "fsblkcnt_t and c_ulong are 32-bit on some targets"
        )]
        let free_bytes =
            u64::from(vfs.blocks_available()).saturating_mul(u64::from(vfs.fragment_size()));
        Ok(TokenStatus {
            label: info.label().trim_end().to_owned(),
            serial: info.serial_number().trim_end().to_owned(),
            manufacturer: info.manufacturer_id().trim_end().to_owned(),
            model: info.model().trim_end().to_owned(),
            objects,
            free_bytes,
        })
    })();
    let _ = ctx.finalize();
    result
}

/// Zeroizes every token in `dir`, as a tamper response would: all token files are overwritten
/// with zeros and removed. The PIN files stay, so a fresh `init --force` can follow.
pub fn tamper(dir: &Path) -> Result<usize> {
    let dir = absolute(dir)?;
    if !dir.join(CONF_FILE).exists() {
        return Err(SimError::NotProvisioned { dir });
    }
    let tokens = dir.join(TOKENS_DIR);
    let n = zeroize_tree(&tokens)?;
    fs::create_dir_all(&tokens).map_err(io(format!("create {}", tokens.display())))?;
    sync_dir(&tokens, "token directory")?;
    Ok(n)
}

/// Unplugs the token in `dir`, as pulling a USB token out would: its token directory is moved
/// aside to [`DETACHED_DIR`], intact, so [`attach`] can plug the same token back.
pub fn detach(dir: &Path) -> Result<PathBuf> {
    let dir = absolute(dir)?;
    if !dir.join(CONF_FILE).exists() {
        return Err(SimError::NotProvisioned { dir });
    }
    let detached = dir.join(DETACHED_DIR);
    if detached.exists() {
        return Err(SimError::AlreadyDetached { dir });
    }
    let tokens = dir.join(TOKENS_DIR);
    fs::rename(&tokens, &detached).map_err(io(format!(
        "move {} to {}",
        tokens.display(),
        detached.display()
    )))?;
    sync_dir(&dir, "token store directory")?;
    Ok(detached)
}

/// Plugs a token [`detach`]ed from `dir` back in: its directory is moved back into place.
pub fn attach(dir: &Path) -> Result<PathBuf> {
    let dir = absolute(dir)?;
    if !dir.join(CONF_FILE).exists() {
        return Err(SimError::NotProvisioned { dir });
    }
    let detached = dir.join(DETACHED_DIR);
    if !detached.is_dir() {
        return Err(SimError::NotDetached { dir });
    }
    let tokens = dir.join(TOKENS_DIR);
    if tokens.exists() {
        // An empty directory left in its place (e.g. by a tool that recreated it) is removed;
        // anything with contents is left for the operator to sort out.
        fs::remove_dir(&tokens).map_err(|_| SimError::TokenDirInTheWay { dir: dir.clone() })?;
    }
    fs::rename(&detached, &tokens).map_err(io(format!(
        "move {} to {}",
        detached.display(),
        tokens.display()
    )))?;
    sync_dir(&dir, "token store directory")?;
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_pin_is_32_lowercase_hex_digits() {
        let rng = SystemRandom::new();
        let a = random_pin(&rng).unwrap();
        let b = random_pin(&rng).unwrap();
        for pin in [&a, &b] {
            let text = pin.expose_secret();
            assert_eq!(text.len(), 32);
            assert!(text.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
        }
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    // The one test in this process that loads SoftHSM: `use_config` sets its environment.
    #[test]
    fn provision_writes_owner_only_files_and_detach_attach_moves_the_token() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hsm");
        let p = provision(&ProvisionOptions::new(&dir)).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(TOKENS_DIR)), 0o700);
        for file in [CONF_FILE, USER_PIN_FILE, SO_PIN_FILE, HSM_TABLE_FILE] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                HSM_TABLE_FILE,
                SO_PIN_FILE,
                CONF_FILE,
                TOKENS_DIR,
                USER_PIN_FILE
            ],
            "no partial file is left"
        );
        let pin = read_pin(&p.user_pin_file).unwrap();
        assert_eq!(pin.expose_secret().len(), 32);
        assert_eq!(
            fs::read_to_string(dir.join(HSM_TABLE_FILE)).unwrap(),
            p.hsm_table()
        );
        assert!(matches!(
            provision(&ProvisionOptions::new(&dir)),
            Err(SimError::AlreadyProvisioned { .. })
        ));

        let detached = detach(&dir).unwrap();
        assert!(detached.is_dir() && !dir.join(TOKENS_DIR).exists());
        assert!(matches!(
            detach(&dir),
            Err(SimError::AlreadyDetached { .. })
        ));
        attach(&dir).unwrap();
        assert!(dir.join(TOKENS_DIR).is_dir() && !detached.exists());
        assert_eq!(status(&dir, "keyward").unwrap().label, "keyward");
    }
}
