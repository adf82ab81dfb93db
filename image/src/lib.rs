//! Keyward firmware images: build, sign, verify, install into A/B slots, roll back, and check at
//! boot.
//!
//! An image is one file:
//!
//! ```text
//! "KWIMG1\n" | u32 BE manifest length | manifest (JSON) | u32 BE signature length | signature |
//! the files' bytes, in manifest order, back to back
//! ```
//!
//! The Ed25519 signature covers a domain tag and the manifest bytes. The manifest lists each
//! file's path, mode, size and SHA-256, so the signature covers every byte. An installed slot
//! holds the files plus `manifest.json` and `manifest.sig`, and is verified the same way.
//! `ROOT/active` names the active slot and is replaced atomically (write, fsync, rename,
//! fsync the directory). `ROOT/trusted.pub` is the public key the root was installed with.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use keyward_secret_file::{
    PRIVATE_FILE_MODE, SecretFileError, create_new, replace, replace_with, sync_dir, write_new,
};

use ring::digest::{Context, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8] = b"KWIMG1\n";
const SIGNING_DOMAIN: &[u8] = b"keyward-image-manifest-v1\n";
const MANIFEST_FILE: &str = "manifest.json";
const SIGNATURE_FILE: &str = "manifest.sig";
const ACTIVE_FILE: &str = "active";
const TRUSTED_KEY_FILE: &str = "trusted.pub";
/// Manifests are small; a larger one is a malformed or hostile image.
const MAX_MANIFEST: u32 = 1 << 20;
/// Set to `before-switch` to abort between writing a slot and switching to it (tests only).
pub const CRASH_ENV: &str = "KEYWARD_IMAGE_CRASH_AT";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a Keyward firmware image (bad magic)")]
    BadMagic,
    #[error("the image is truncated: {0}")]
    Truncated(String),
    #[error("the image has {0} bytes after its last file: something was appended")]
    TrailingData(u64),
    #[error("the manifest is malformed: {0}")]
    BadManifest(String),
    #[error(
        "the signature does not verify with this public key: the image was altered, or signed by another key"
    )]
    BadSignature,
    #[error("file {path}: {problem}")]
    BadFile { path: String, problem: String },
    #[error("unsafe path {path:?} in the manifest: {problem}")]
    UnsafePath { path: String, problem: String },
    #[error("key file {path}: {problem}")]
    BadKey { path: String, problem: String },
    #[error("version {0:?} is not X.Y.Z")]
    BadVersion(String),
    #[error(
        "refused: image version {new} is lower than the installed {installed}; pass --allow-downgrade to install it anyway"
    )]
    Downgrade { new: String, installed: String },
    #[error("slot {slot}: {problem}")]
    BadSlot { slot: String, problem: String },
    #[error("no bootable slot: {0}")]
    NoBootableSlot(String),
    #[error(transparent)]
    File(#[from] SecretFileError),
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
    let what = what.into();
    move |source| ImageError::Io { what, source }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub mode: u32,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub version: String,
    pub build_time: String,
    pub target: String,
    pub files: Vec<FileEntry>,
}

/// A version `X.Y.Z`, compared numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(u64, u64, u64);

impl Version {
    pub fn parse(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split('.').collect();
        let num = |s: &str| {
            s.parse::<u64>()
                .ok()
                .filter(|_| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
        };
        match parts.as_slice() {
            [a, b, c] => match (num(a), num(b), num(c)) {
                (Some(a), Some(b), Some(c)) => Ok(Version(a, b, c)),
                _ => Err(ImageError::BadVersion(text.into())),
            },
            _ => Err(ImageError::BadVersion(text.into())),
        }
    }
}

/// A path inside an image: relative, normal components only, no `..`, no absolute part.
pub fn check_path(path: &str) -> Result<PathBuf> {
    let unsafe_path = |problem: &str| ImageError::UnsafePath {
        path: path.into(),
        problem: problem.into(),
    };
    if path.is_empty() || path.contains('\0') {
        return Err(unsafe_path("empty or contains NUL"));
    }
    let p = Path::new(path);
    let mut clean = PathBuf::new();
    for component in p.components() {
        match component {
            Component::Normal(c) => clean.push(c),
            Component::ParentDir => return Err(unsafe_path("contains '..'")),
            Component::RootDir | Component::Prefix(_) => return Err(unsafe_path("is absolute")),
            Component::CurDir => return Err(unsafe_path("contains '.'")),
        }
    }
    if clean.as_os_str() != p.as_os_str() || [MANIFEST_FILE, SIGNATURE_FILE].contains(&path) {
        return Err(unsafe_path("is not in canonical form, or is reserved"));
    }
    Ok(clean)
}

impl Manifest {
    /// Checks the manifest's own rules: format, version, safe and unique paths, sane modes.
    pub fn check(&self) -> Result<Version> {
        if self.format != 1 {
            return Err(ImageError::BadManifest(format!(
                "format {} is not supported (1 is)",
                self.format
            )));
        }
        let version = Version::parse(&self.version)?;
        let mut seen = BTreeSet::new();
        for f in &self.files {
            check_path(&f.path)?;
            if !seen.insert(f.path.as_str()) {
                return Err(ImageError::BadManifest(format!(
                    "{} is listed twice",
                    f.path
                )));
            }
            if f.mode & !0o777 != 0 || f.mode & 0o022 != 0 {
                return Err(ImageError::BadManifest(format!(
                    "{}: mode {:o} is not allowed (no setuid, not group/world writable)",
                    f.path, f.mode
                )));
            }
            if hex::decode(&f.sha256).map(|d| d.len()) != Ok(32) {
                return Err(ImageError::BadManifest(format!(
                    "{}: sha256 is not 64 hex digits",
                    f.path
                )));
            }
        }
        // A file may not also be a directory of another file (a/b and a).
        for f in &self.files {
            let prefix = format!("{}/", f.path);
            if self.files.iter().any(|g| g.path.starts_with(&prefix)) {
                return Err(ImageError::BadManifest(format!(
                    "{} is both a file and a directory",
                    f.path
                )));
            }
        }
        Ok(version)
    }
}

fn signed_message(manifest: &[u8]) -> Vec<u8> {
    [SIGNING_DOMAIN, manifest].concat()
}

/// Makes a new Ed25519 signing key (PKCS#8, mode 0600) and writes the public key beside it
/// (`FILE.pub`, hex). Refuses to overwrite.
pub fn keygen(out: &Path) -> Result<PathBuf> {
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| ImageError::BadKey {
            path: out.display().to_string(),
            problem: "key generation failed".into(),
        })?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| ImageError::BadKey {
        path: out.display().to_string(),
        problem: "generated key is unusable".into(),
    })?;
    let public = PathBuf::from(format!("{}.pub", out.display()));
    write_new(out, pkcs8.as_ref(), PRIVATE_FILE_MODE, "signing key")?;
    write_new(
        &public,
        format!("{}\n", hex::encode(pair.public_key().as_ref())).as_bytes(),
        0o644,
        "public key",
    )?;
    Ok(public)
}

fn load_signing_key(path: &Path) -> Result<Ed25519KeyPair> {
    let shown = path.display().to_string();
    let bytes = keyward_secret_file::read_secret_bytes(path, "signing key").map_err(|e| {
        ImageError::BadKey {
            path: shown.clone(),
            problem: e.to_string(),
        }
    })?;
    Ed25519KeyPair::from_pkcs8(&bytes).map_err(|_| ImageError::BadKey {
        path: shown,
        problem: "not an Ed25519 PKCS#8 key".into(),
    })
}

/// Reads a public key written by [`keygen`] (hex, one line).
pub fn load_public_key(path: &Path) -> Result<Vec<u8>> {
    let shown = path.display().to_string();
    let text = fs::read_to_string(path).map_err(io(format!("public key {shown}")))?;
    let key = hex::decode(text.trim()).map_err(|_| ImageError::BadKey {
        path: shown.clone(),
        problem: "not hex".into(),
    })?;
    if key.len() != 32 {
        return Err(ImageError::BadKey {
            path: shown,
            problem: "not a 32-byte Ed25519 public key".into(),
        });
    }
    Ok(key)
}

/// A file to pack: where it comes from, where it goes, its mode.
pub struct Source {
    pub from: PathBuf,
    pub path: String,
    pub mode: u32,
}

fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let mut f = File::open(path).map_err(io(format!("read {}", path.display())))?;
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(io(format!("read {}", path.display())))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(ctx.finish().as_ref())))
}

/// Builds and signs an image of `sources`.
pub fn build(
    version: &str,
    target: &str,
    sources: &[Source],
    signing_key: &Path,
    out: &Path,
) -> Result<Manifest> {
    let pair = load_signing_key(signing_key)?;
    let mut files = Vec::new();
    for s in sources {
        let (size, sha256) = sha256_file(&s.from)?;
        files.push(FileEntry {
            path: s.path.clone(),
            mode: s.mode,
            size,
            sha256,
        });
    }
    let manifest = Manifest {
        format: 1,
        version: version.into(),
        build_time: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        target: target.into(),
        files,
    };
    manifest.check()?;
    let manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| ImageError::BadManifest(e.to_string()))?;
    let signature = pair.sign(&signed_message(&manifest_bytes));
    // The image appears under its name only once it is whole.
    replace_with(out, 0o644, "image", |f| {
        let mut write = |bytes: &[u8]| {
            f.write_all(bytes)
                .map_err(io(format!("write {}", out.display())))
        };
        write(MAGIC)?;
        write(
            &u32::try_from(manifest_bytes.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        )?;
        write(&manifest_bytes)?;
        write(
            &u32::try_from(signature.as_ref().len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        )?;
        write(signature.as_ref())?;
        for s in sources {
            let mut from = File::open(&s.from).map_err(io(format!("read {}", s.from.display())))?;
            std::io::copy(&mut from, f).map_err(io(format!("pack {}", s.from.display())))?;
        }
        Ok::<(), ImageError>(())
    })?;
    Ok(manifest)
}

/// An opened image whose manifest signature has been checked.
pub struct Image {
    pub manifest: Manifest,
    manifest_bytes: Vec<u8>,
    signature: Vec<u8>,
    file: File,
    data_start: u64,
}

fn read_exact(f: &mut File, n: usize, what: &str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    f.read_exact(&mut buf)
        .map_err(|_| ImageError::Truncated(format!("it ends inside the {what}")))?;
    Ok(buf)
}

fn read_len(f: &mut File, what: &str) -> Result<u32> {
    let raw = read_exact(f, 4, what)?;
    Ok(u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

fn verify_signature(
    public_key: &[u8],
    manifest_bytes: &[u8],
    signature: &[u8],
) -> Result<Manifest> {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&signed_message(manifest_bytes), signature)
        .map_err(|_| ImageError::BadSignature)?;
    let manifest: Manifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| ImageError::BadManifest(e.to_string()))?;
    manifest.check()?;
    Ok(manifest)
}

impl Image {
    /// Opens an image and checks its signature and manifest; [`Image::verify_files`] checks
    /// the bytes.
    pub fn open(path: &Path, public_key: &[u8]) -> Result<Self> {
        let mut file = File::open(path).map_err(io(format!("open image {}", path.display())))?;
        if read_exact(&mut file, MAGIC.len(), "header").map_err(|_| ImageError::BadMagic)? != MAGIC
        {
            return Err(ImageError::BadMagic);
        }
        let len = read_len(&mut file, "header")?;
        if len > MAX_MANIFEST {
            return Err(ImageError::BadManifest(format!("{len} bytes is too large")));
        }
        let manifest_bytes = read_exact(&mut file, len as usize, "manifest")?;
        let sig_len = read_len(&mut file, "signature length")?;
        if sig_len > 1024 {
            return Err(ImageError::BadManifest("signature too large".into()));
        }
        let signature = read_exact(&mut file, sig_len as usize, "signature")?;
        let manifest = verify_signature(public_key, &manifest_bytes, &signature)?;
        let data_start = (MAGIC.len() + 4 + manifest_bytes.len() + 4 + signature.len()) as u64;
        Ok(Self {
            manifest,
            manifest_bytes,
            signature,
            file,
            data_start,
        })
    }

    /// Streams every file through SHA-256 against the manifest, and rejects truncated or
    /// extended images. With `extract_to`, writes the files there as they are checked.
    fn walk_files(&mut self, mut extract_to: Option<&Path>) -> Result<()> {
        use std::io::Seek;
        self.file
            .seek(std::io::SeekFrom::Start(self.data_start))
            .map_err(io("seek image"))?;
        let mut buf = vec![0u8; 1 << 16];
        for entry in &self.manifest.files {
            let mut ctx = Context::new(&SHA256);
            let mut out = match extract_to.as_mut() {
                Some(dir) => Some(create_in_slot(dir, entry)?),
                None => None,
            };
            let mut left = entry.size;
            while left > 0 {
                let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
                let n = self.file.read(&mut buf[..want]).map_err(io("read image"))?;
                if n == 0 {
                    return Err(ImageError::Truncated(format!(
                        "it ends inside {}",
                        entry.path
                    )));
                }
                ctx.update(&buf[..n]);
                if let Some(f) = out.as_mut() {
                    f.write_all(&buf[..n])
                        .map_err(io(format!("write {}", entry.path)))?;
                }
                left -= n as u64;
            }
            if hex::encode(ctx.finish().as_ref()) != entry.sha256 {
                return Err(ImageError::BadFile {
                    path: entry.path.clone(),
                    problem: "its SHA-256 does not match the manifest: the bytes were changed"
                        .into(),
                });
            }
            if let Some(f) = out {
                f.sync_all().map_err(io(format!("sync {}", entry.path)))?;
            }
        }
        let mut extra = 0u64;
        loop {
            let n = self.file.read(&mut buf).map_err(io("read image"))?;
            if n == 0 {
                break;
            }
            extra += n as u64;
        }
        if extra > 0 {
            return Err(ImageError::TrailingData(extra));
        }
        Ok(())
    }

    pub fn verify_files(&mut self) -> Result<()> {
        self.walk_files(None)
    }
}

/// Creates a file of the slot, refusing to follow a symlink anywhere on the way.
fn create_in_slot(slot: &Path, entry: &FileEntry) -> Result<File> {
    let rel = check_path(&entry.path)?;
    let target = slot.join(&rel);
    if let Some(parent) = rel.parent() {
        let mut dir = slot.to_path_buf();
        for c in parent.components() {
            dir.push(c);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(ImageError::UnsafePath {
                        path: entry.path.clone(),
                        problem: "a directory on its way is a symlink".into(),
                    });
                }
                Ok(_) => {}
                Err(_) => fs::create_dir(&dir).map_err(io(format!("create {}", dir.display())))?,
            }
        }
    }
    // The manifest's mode exactly, whatever the installing process's umask (keywardd's is 077).
    Ok(create_new(&target, entry.mode, "slot file")?)
}

/// Verifies an installed slot: signature, exactly the listed files (no extra, none missing,
/// no symlinks), each file's hash and mode.
pub fn verify_slot(slot: &Path, public_key: &[u8]) -> Result<Manifest> {
    let name = slot.display().to_string();
    let bad = |problem: String| ImageError::BadSlot {
        slot: name.clone(),
        problem,
    };
    let manifest_bytes =
        fs::read(slot.join(MANIFEST_FILE)).map_err(|e| bad(format!("no manifest ({e})")))?;
    let signature =
        fs::read(slot.join(SIGNATURE_FILE)).map_err(|e| bad(format!("no signature ({e})")))?;
    let manifest = verify_signature(public_key, &manifest_bytes, &signature)?;
    let mut on_disk = BTreeSet::new();
    let mut stack = vec![slot.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(io(format!("list {}", dir.display())))? {
            let entry = entry.map_err(io(format!("list {}", dir.display())))?;
            let kind = entry.file_type().map_err(io("stat"))?;
            let rel = entry
                .path()
                .strip_prefix(slot)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if kind.is_symlink() {
                return Err(bad(format!("{rel} is a symlink")));
            } else if kind.is_dir() {
                stack.push(entry.path());
            } else if rel != MANIFEST_FILE && rel != SIGNATURE_FILE {
                on_disk.insert(rel);
            }
        }
    }
    let listed: BTreeSet<String> = manifest.files.iter().map(|f| f.path.clone()).collect();
    if let Some(extra) = on_disk.difference(&listed).next() {
        return Err(bad(format!("{extra} is not in the manifest")));
    }
    if let Some(missing) = listed.difference(&on_disk).next() {
        return Err(bad(format!("{missing} is missing")));
    }
    for f in &manifest.files {
        let path = slot.join(&f.path);
        let (size, sha) = sha256_file(&path)?;
        if size != f.size || sha != f.sha256 {
            return Err(ImageError::BadFile {
                path: f.path.clone(),
                problem: "its contents do not match the manifest".into(),
            });
        }
        let mode = fs::metadata(&path)
            .map_err(io("stat"))?
            .permissions()
            .mode()
            & 0o7777;
        if mode != f.mode {
            return Err(ImageError::BadFile {
                path: f.path.clone(),
                problem: format!("mode {mode:o} is not the manifest's {:o}", f.mode),
            });
        }
    }
    Ok(manifest)
}

/// The A/B root: `slots/a`, `slots/b`, `active`, `trusted.pub`.
pub struct Root {
    pub dir: PathBuf,
}

pub const SLOTS: [&str; 2] = ["a", "b"];

fn other(slot: &str) -> &'static str {
    if slot == "a" { "b" } else { "a" }
}

/// What `status` reports about a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotStatus {
    pub name: &'static str,
    pub active: bool,
    /// `Ok(version)` when it verifies; the reason otherwise (or `empty`).
    pub state: Result<String, String>,
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn slot_dir(&self, slot: &str) -> PathBuf {
        self.dir.join("slots").join(slot)
    }

    /// The active slot's name, if one was ever installed.
    pub fn active(&self) -> Result<Option<&'static str>> {
        match fs::read_to_string(self.dir.join(ACTIVE_FILE)) {
            Ok(text) => match text.trim() {
                "a" => Ok(Some("a")),
                "b" => Ok(Some("b")),
                other => Err(ImageError::BadSlot {
                    slot: other.into(),
                    problem: "the active pointer names no slot".into(),
                }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::Io {
                what: "read the active pointer".into(),
                source: e,
            }),
        }
    }

    /// Atomically points `active` at `slot`: write, fsync, rename, fsync the directory.
    fn switch_to(&self, slot: &str) -> Result<()> {
        Ok(replace(
            &self.dir.join(ACTIVE_FILE),
            format!("{slot}\n").as_bytes(),
            0o644,
            "active pointer",
        )?)
    }

    /// The key this root trusts: the one given, else the one recorded at first install.
    pub fn trusted_key(&self, given: Option<&Path>) -> Result<Vec<u8>> {
        load_public_key(
            &given
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.dir.join(TRUSTED_KEY_FILE)),
        )
    }

    /// Verifies, then writes the image into the inactive slot and switches to it.
    pub fn install(
        &self,
        image_path: &Path,
        public_key_path: &Path,
        allow_downgrade: bool,
    ) -> Result<Manifest> {
        let public_key = load_public_key(public_key_path)?;
        // A root trusts one key: the one recorded at its first install. Another key is refused
        // here rather than accepted and then rejected by the next boot-check.
        let trusted = self.dir.join(TRUSTED_KEY_FILE);
        if trusted.exists() && load_public_key(&trusted)? != public_key {
            return Err(ImageError::BadKey {
                path: public_key_path.display().to_string(),
                problem: format!(
                    "this root trusts another key ({}); rotating it is a separate, deliberate step",
                    trusted.display()
                ),
            });
        }
        let mut image = Image::open(image_path, &public_key)?;
        image.verify_files()?;
        let new = Version::parse(&image.manifest.version)?;
        fs::create_dir_all(self.dir.join("slots"))
            .map_err(io(format!("create {}", self.dir.display())))?;
        let active = self.active()?;
        if let Some(current) = active {
            match verify_slot(&self.slot_dir(current), &public_key) {
                Ok(installed) => {
                    if new < Version::parse(&installed.version)? && !allow_downgrade {
                        return Err(ImageError::Downgrade {
                            new: image.manifest.version.clone(),
                            installed: installed.version,
                        });
                    }
                }
                // Without a verified installed version, any install may be a downgrade.
                Err(e) if !allow_downgrade => {
                    return Err(ImageError::BadSlot {
                        slot: current.into(),
                        problem: format!(
                            "the active slot does not verify ({e}), so a downgrade cannot be ruled out; pass --allow-downgrade to install anyway"
                        ),
                    });
                }
                Err(_) => {}
            }
        }
        let target = active.map_or("a", other);
        // Extract into a staging directory and verify it there: the slot appears, by rename,
        // only once every file checked out. A stale staging directory (or symlink) is removed.
        let staging = self.dir.join("slots").join(".incoming");
        if fs::symlink_metadata(&staging).is_ok() {
            fs::remove_dir_all(&staging)
                .or_else(|_| fs::remove_file(&staging))
                .map_err(io(format!("clear {}", staging.display())))?;
        }
        fs::create_dir(&staging).map_err(io(format!("create {}", staging.display())))?;
        image.walk_files(Some(&staging))?;
        write_new(
            &staging.join(MANIFEST_FILE),
            &image.manifest_bytes,
            0o644,
            "manifest",
        )?;
        write_new(
            &staging.join(SIGNATURE_FILE),
            &image.signature,
            0o644,
            "signature",
        )?;
        sync_tree(&staging)?;
        verify_slot(&staging, &public_key)?;
        let slot = self.slot_dir(target);
        if fs::symlink_metadata(&slot).is_ok() {
            fs::remove_dir_all(&slot)
                .or_else(|_| fs::remove_file(&slot))
                .map_err(io(format!("clear {}", slot.display())))?;
        }
        fs::rename(&staging, &slot).map_err(io(format!(
            "move the verified slot into {}",
            slot.display()
        )))?;
        sync_dir(&self.dir.join("slots"), "slots directory")?;
        if !trusted.exists() {
            write_new(
                &trusted,
                format!("{}\n", hex::encode(&public_key)).as_bytes(),
                0o644,
                "trusted public key",
            )?;
        }
        if std::env::var(CRASH_ENV).as_deref() == Ok("before-switch") {
            std::process::abort();
        }
        self.switch_to(target)?;
        Ok(image.manifest)
    }

    /// Switches back to the other slot, if it verifies.
    pub fn rollback(&self, public_key: Option<&Path>) -> Result<(&'static str, Manifest)> {
        let key = self.trusted_key(public_key)?;
        let active = self
            .active()?
            .ok_or_else(|| ImageError::NoBootableSlot("nothing is installed".into()))?;
        let previous = other(active);
        let manifest = verify_slot(&self.slot_dir(previous), &key)?;
        self.switch_to(previous)?;
        Ok((previous, manifest))
    }

    pub fn status(&self, public_key: Option<&Path>) -> Result<Vec<SlotStatus>> {
        let key = self.trusted_key(public_key);
        let active = self.active()?;
        Ok(SLOTS
            .iter()
            .map(|name| {
                let dir = self.slot_dir(name);
                let state = if !dir.exists() {
                    Err("empty".to_owned())
                } else {
                    match &key {
                        Ok(k) => verify_slot(&dir, k)
                            .map(|m| m.version)
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(format!("cannot verify: {e}")),
                    }
                };
                SlotStatus {
                    name,
                    active: active == Some(*name),
                    state,
                }
            })
            .collect())
    }

    /// At boot: verifies the active slot; if it is bad, falls back to the other one. Returns
    /// the slot booted, its manifest, and the reason for a fallback.
    pub fn boot_check(
        &self,
        public_key: Option<&Path>,
    ) -> Result<(&'static str, Manifest, Option<String>)> {
        let key = self.trusted_key(public_key)?;
        let active = self
            .active()?
            .ok_or_else(|| ImageError::NoBootableSlot("nothing is installed".into()))?;
        let why = match verify_slot(&self.slot_dir(active), &key) {
            Ok(m) => return Ok((active, m, None)),
            Err(e) => e.to_string(),
        };
        let fallback = other(active);
        match verify_slot(&self.slot_dir(fallback), &key) {
            Ok(m) => {
                self.switch_to(fallback)?;
                Ok((
                    fallback,
                    m,
                    Some(format!("slot {active} failed verification ({why})")),
                ))
            }
            Err(e) => Err(ImageError::NoBootableSlot(format!(
                "slot {active}: {why}; slot {fallback}: {e}"
            ))),
        }
    }
}

fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(io(format!("list {}", dir.display())))? {
        let entry = entry.map_err(io("list"))?;
        if entry.file_type().map_err(io("stat"))?.is_dir() {
            sync_tree(&entry.path())?;
        }
    }
    Ok(sync_dir(dir, "slot directory")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "usr/../../x",
            "./x",
            "a//b",
            "",
            "manifest.json",
            "a/./b",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        assert!(check_path("usr/bin/keywardd").is_ok());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(Version::parse("1.10.0").unwrap() > Version::parse("1.9.9").unwrap());
        for bad in ["1.2", "1.2.x", "v1.2.3", "1.2.3.4", "1..3"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }
}
