//! `keyward-image`: build, sign, verify, install, roll back and boot-check firmware images.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyward_image::{Image, Root, Source, build, keygen, load_public_key};

#[derive(Parser)]
#[command(
    name = "keyward-image",
    version,
    about = "Keyward firmware images: build, verify, install (A/B), roll back"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make an Ed25519 signing key (PKCS#8, mode 0600) and its public key beside it (FILE.pub).
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Pack the release binaries, the default config and the systemd unit, and sign the manifest.
    Build {
        #[arg(long)]
        version: String,
        #[arg(long)]
        signing_key: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Where the binaries are (default: beside this keyward-image).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// The files to ship as they lie under / (default: the source tree's image/rootfs).
        #[arg(long)]
        rootfs: Option<PathBuf>,
    },
    /// Check an image's signature and every file's hash.
    Verify {
        file: PathBuf,
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Verify, then install into the inactive slot of ROOT and switch to it.
    Install {
        file: PathBuf,
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        public_key: PathBuf,
        /// Install a version lower than the installed one.
        #[arg(long)]
        allow_downgrade: bool,
    },
    /// Switch back to the previous slot, if it verifies.
    Rollback {
        #[arg(long)]
        root: PathBuf,
        /// Default: the key recorded at first install (ROOT/trusted.pub).
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Both slots: version, verification, which is active.
    Status {
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// At boot: verify the active slot; fall back to the other one if it is bad.
    BootCheck {
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

pub const BINARIES: [&str; 4] = [
    "keywardd",
    "keyward-console",
    "keyward-hsm-sim",
    "keyward-image",
];

/// The mode a rootfs file ships with. A checkout keeps only 0644 and 0755, so modes come from
/// this policy, not from the source tree: the appliance's config directory is owner-only.
fn shipped_mode(path: &str, on_disk: u32) -> u32 {
    if path.starts_with("etc/keyward/") {
        0o600
    } else if on_disk & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

fn sources(bin_dir: &Path, rootfs: &Path) -> Result<Vec<Source>, String> {
    let mut out = Vec::new();
    for bin in BINARIES {
        let from = bin_dir.join(bin);
        if !from.is_file() {
            return Err(format!(
                "{} is missing; build the release binaries first (cargo build --release)",
                from.display()
            ));
        }
        out.push(Source {
            from,
            path: format!("usr/bin/{bin}"),
            mode: 0o755,
        });
    }
    let mut stack = vec![rootfs.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| e.to_string())?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let on_disk = entry
                    .metadata()
                    .map_err(|e| e.to_string())?
                    .permissions()
                    .mode();
                let rel = path
                    .strip_prefix(rootfs)
                    .map_err(|e| e.to_string())?
                    .to_string_lossy()
                    .into_owned();
                let mode = shipped_mode(&rel, on_disk);
                files.push(Source {
                    from: path,
                    path: rel,
                    mode,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    out.extend(files);
    Ok(out)
}

fn run(command: Command) -> Result<ExitCode, String> {
    let e = |e: keyward_image::ImageError| e.to_string();
    match command {
        Command::Keygen { out } => {
            let public = keygen(&out).map_err(e)?;
            println!(
                "signing key {} (keep it offline); public key {}",
                out.display(),
                public.display()
            );
        }
        Command::Build {
            version,
            signing_key,
            out,
            bin_dir,
            rootfs,
        } => {
            let bin_dir = match bin_dir {
                Some(d) => d,
                None => std::env::current_exe()
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .ok_or("cannot find the binaries; pass --bin-dir")?,
            };
            let rootfs = rootfs
                .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/rootfs")));
            let target = format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS);
            let manifest = build(
                &version,
                &target,
                &sources(&bin_dir, &rootfs)?,
                &signing_key,
                &out,
            )
            .map_err(e)?;
            println!(
                "built {} version {} for {} ({} files)",
                out.display(),
                manifest.version,
                manifest.target,
                manifest.files.len()
            );
            for f in &manifest.files {
                println!(
                    "  {:o} {:>10} {} {}",
                    f.mode,
                    f.size,
                    &f.sha256[..16],
                    f.path
                );
            }
        }
        Command::Verify { file, public_key } => {
            let key = load_public_key(&public_key).map_err(e)?;
            let mut image = Image::open(&file, &key).map_err(e)?;
            image.verify_files().map_err(e)?;
            println!(
                "image {} verified: version {}, {} files, built {}",
                file.display(),
                image.manifest.version,
                image.manifest.files.len(),
                image.manifest.build_time
            );
        }
        Command::Install {
            file,
            root,
            public_key,
            allow_downgrade,
        } => {
            let manifest = Root::new(&root)
                .install(&file, &public_key, allow_downgrade)
                .map_err(e)?;
            let active = Root::new(&root).active().map_err(e)?.unwrap_or("?");
            println!(
                "installed version {} into slot {active}; it is now active",
                manifest.version
            );
        }
        Command::Rollback { root, public_key } => {
            let (slot, manifest) = Root::new(&root)
                .rollback(public_key.as_deref())
                .map_err(e)?;
            println!("rolled back to slot {slot} (version {})", manifest.version);
        }
        Command::Status { root, public_key } => {
            for slot in Root::new(&root).status(public_key.as_deref()).map_err(e)? {
                let state = match slot.state {
                    Ok(version) => format!("version {version}, verified"),
                    Err(reason) => reason,
                };
                println!(
                    "slot {}{}: {state}",
                    slot.name,
                    if slot.active { " (active)" } else { "" }
                );
            }
        }
        Command::BootCheck { root, public_key } => {
            let (slot, manifest, fallback) = Root::new(&root)
                .boot_check(public_key.as_deref())
                .map_err(e)?;
            match fallback {
                None => println!(
                    "slot {slot} (version {}) verified; booting it",
                    manifest.version
                ),
                Some(why) => {
                    println!(
                        "WARNING: {why}; fell back to slot {slot} (version {}), now active",
                        manifest.version
                    );
                    return Ok(ExitCode::from(2));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("keyward-image: {message}");
            ExitCode::FAILURE
        }
    }
}
