//! `keywardd`: first boot (`init`), serving (`run`) and offline audit verification.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use keyward_daemon::appliance::{Appliance, InitialAdmin};
use keyward_daemon::audit;
use keyward_daemon::config::Config;
use keyward_daemon::error::{Error, Result};
use keyward_daemon::hardening::{Handover, Owners, Trust, check_trusted};
use keyward_daemon::hsm::Hsm;
use keyward_daemon::hsm::pkcs11::{Pkcs11Hsm, Pkcs11Settings};
use keyward_daemon::secret_file::read_secret;
use keyward_daemon::server;
use keyward_daemon::store::Store;
use keyward_daemon::store::settings::AUDIT_KEY;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "keywardd",
    version,
    about = "The Keyward key-management appliance daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// First boot: create the HSM storage and audit keys, the database and two administrators.
    Init {
        #[arg(long)]
        config: PathBuf,
        /// NAME=PASSWORD_FILE; give it at least twice. The file must be mode 0600.
        #[arg(long = "admin", value_name = "NAME=PASSWORD_FILE")]
        admins: Vec<String>,
    },
    /// Serve the console socket until SIGTERM or SIGINT.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Audit trail commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the whole trail: every hash link, every HSM MAC, and the head kept in the HSM.
    Verify {
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    // First, before anything of ours is open: descriptors we did not open are not ours to keep.
    let closed = keyward_daemon::hardening::close_inherited_fds();
    let hardening = keyward_daemon::hardening::early(closed);
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_env("KEYWARD_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let result = match cli.command {
        Command::Init { config, admins } => init(&config, &admins),
        Command::Run { config } => run(&config, hardening),
        Command::Audit {
            command: AuditCommand::Verify { config },
        } => verify(&config),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keywardd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config and sets the module's environment. Must run before any other thread
/// starts (sled starts a flusher thread, tokio its workers).
fn load_config(config_path: &Path) -> Result<Config> {
    let config = Config::load(config_path)?;
    config.apply_module_env();
    Ok(config)
}

/// Opens the HSM the config names: loads the module, logs in, probes capabilities.
fn open_hsm(config: &Config) -> Result<Arc<dyn Hsm>> {
    let pin = read_secret(config.hsm.pin_file.get_ref(), "PIN file")?;
    let hsm = Pkcs11Hsm::open(Pkcs11Settings {
        module: config.hsm.module.get_ref().clone(),
        token_label: config.hsm.token_label.clone(),
        pin,
        sessions: config.hsm.sessions,
    })?;
    Ok(Arc::new(hsm))
}

fn parse_admin(arg: &str, owners: &Owners) -> Result<InitialAdmin> {
    let (name, file) = arg
        .split_once('=')
        .ok_or_else(|| Error::Invalid(format!("--admin {arg}: expected NAME=PASSWORD_FILE (the password itself never goes on the command line)")))?;
    let password = read_secret(Path::new(file), "password file")?;
    check_trusted(Path::new(file), Trust::Data, owners).map_err(|problem| {
        Error::Invalid(format!("--admin {name}: password file {file}: {problem}"))
    })?;
    Ok(InitialAdmin {
        name: name.to_owned(),
        password,
    })
}

fn init(config_path: &Path, admin_args: &[String]) -> Result<ExitCode> {
    // Read every input before touching the HSM, so bad input changes nothing.
    // Appliance::init checks the administrators (count, names, passwords) before creating anything.
    let config = load_config(config_path)?;
    let owners = config.owners();
    let admins = admin_args
        .iter()
        .map(|a| parse_admin(a, &owners))
        .collect::<Result<Vec<_>>>()?;
    let report = Appliance::init(&config, open_hsm(&config)?, &admins)?;
    println!("initialised Keyward in {}", config.data_dir().display());
    println!(
        "  storage key {} (kcv {})",
        report.storage_key.id, report.storage_key.fingerprint
    );
    println!(
        "  audit key   {} (kcv {})",
        report.audit_key.id, report.audit_key.fingerprint
    );
    println!("  administrators: {}", report.admins.join(", "));
    Ok(ExitCode::SUCCESS)
}

fn run(config_path: &Path, mut hardening: keyward_daemon::hardening::Report) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    let appliance = Arc::new(Appliance::open(&config, open_hsm(&config)?)?);
    appliance.record_lifecycle("daemon.start")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("keywardd")
        .build()
        .map_err(|e| Error::Internal(format!("start the async runtime: {e}")))?;
    runtime.block_on(async {
        // Open what needs privilege, then drop it.
        // Signal handlers first: the socket is how the outside sees the daemon as started.
        let shutdown = server::shutdown_signal()?;
        let socket = config.socket_path();
        let socket_dir_made = socket.parent().filter(|d| !d.exists()).map(Path::to_path_buf);
        let listener = keyward_daemon::front::console::bind(&socket)?;
        let serial: Vec<_> = config
            .serial
            .iter()
            .map(|port| match keyward_daemon::front::serial::open(port) {
                Ok(opened) => (port.clone(), Some(opened)),
                Err(e) => {
                    tracing::warn!(port = %port.name(), error = %e, "serial port not available yet; it will be retried");
                    (port.clone(), None)
                }
            })
            .collect();
        let mut allowed = config.console.allowed_uids.clone();
        allowed.push(nix::unistd::geteuid().as_raw());
        if let Some(user) = &config.user {
            // What the daemon writes after the drop, and nothing else: the data directory
            // itself, the database it made there, the socket, and the socket's directory only
            // if the daemon made it just now.
            let database = config.data_dir().join("db");
            let mut owned = vec![
                Handover::Entry(config.data_dir()),
                Handover::Tree(&database),
                Handover::Entry(&socket),
            ];
            if let Some(dir) = socket_dir_made.as_deref() {
                owned.push(Handover::Entry(dir));
            }
            let uid = keyward_daemon::hardening::drop_privileges(user, &owned, &mut hardening)?;
            allowed.push(uid.as_raw());
        } else {
            hardening.measures.insert(
                "user".into(),
                format!("not dropped: running as uid {} (set `user` in the config to drop root)", nix::unistd::geteuid()),
            );
            hardening.measures.insert("capabilities".into(), keyward_daemon::hardening::capabilities_state());
        }
        appliance.set_hardening(hardening.measures.clone());
        let frontends = server::Frontends {
            console: listener,
            allowed_uids: allowed,
            console_config: config.console.clone(),
            serial,
        };
        let result = server::run(
            appliance,
            frontends,
            config.auth.clone(),
            config.aws.clone(),
            shutdown,
        )
        .await;
        let _ = std::fs::remove_file(config.socket_path());
        result
    })?;
    Ok(ExitCode::SUCCESS)
}

fn verify(config_path: &Path) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    // The database first: while keywardd runs it is locked, and that is the error to show.
    let store = Store::open(config.data_dir())?;
    let key = store
        .get_key_setting(AUDIT_KEY)?
        .ok_or_else(|| Error::NotInitialised(store.path().display().to_string()))?;
    let hsm = open_hsm(&config)?;
    match audit::verify(&store, hsm.as_ref(), &key) {
        Ok(report) => {
            println!(
                "audit trail intact: {} records, head {} {}",
                report.records,
                report.head.seq,
                hex::encode(report.head.hash)
            );
            if report.beyond_anchor > 0 {
                println!(
                    "note: {} record(s) beyond the head kept in the HSM (a write was interrupted); each is MAC-verified",
                    report.beyond_anchor
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(audit::AuditError::Broken(fault)) => {
            println!("audit trail BROKEN at record {}: {fault}", fault.seq());
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(e.into()),
    }
}
