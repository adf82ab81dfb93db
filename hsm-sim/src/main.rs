//! `keyward-hsm-sim`: provision, inspect and tamper with development SoftHSMv2 tokens.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyward_hsm_sim::{ProvisionOptions, attach, detach, provision, status, tamper};

#[derive(Parser)]
#[command(
    name = "keyward-hsm-sim",
    version,
    about = "The Keyward development HSM (SoftHSMv2)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Provision a token in DIR and print the [hsm] table for keywardd's config.
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "keyward")]
        label: String,
        /// Wipe an existing token in DIR and provision a new one.
        #[arg(long)]
        force: bool,
        /// The PKCS#11 module (default: the installed libsofthsm2.so).
        #[arg(long)]
        module: Option<PathBuf>,
    },
    /// Print label, serial number, object count and free space of the token in DIR.
    Status {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "keyward")]
        label: String,
    },
    /// Zeroize the token in DIR, the way a tamper event would on real hardware.
    Tamper {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Unplug the token in DIR: its token directory is moved aside, intact.
    Detach {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Plug a detached token in DIR back in.
    Attach {
        #[arg(long)]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init {
            dir,
            label,
            force,
            module,
        } => provision(&ProvisionOptions {
            dir,
            label,
            force,
            module,
        })
        .map(|p| {
            eprintln!(
                "provisioned token '{}' in {} (PINs in 0600 files there)",
                p.label,
                p.dir.display()
            );
            print!("{}", p.hsm_table());
        }),
        Command::Status { dir, label } => status(&dir, &label).map(|s| {
            println!("label:        {}", s.label);
            println!("serial:       {}", s.serial);
            println!("manufacturer: {}", s.manufacturer);
            println!("model:        {}", s.model);
            println!("objects:      {}", s.objects);
            println!("free space:   {} bytes", s.free_bytes);
        }),
        Command::Tamper { dir } => tamper(&dir).map(|n| {
            println!(
                "token zeroized: {n} token files overwritten and removed in {}",
                dir.display()
            );
        }),
        Command::Detach { dir } => detach(&dir).map(|moved| {
            println!(
                "token detached from {}: its files are kept in {}",
                dir.display(),
                moved.display()
            );
        }),
        Command::Attach { dir } => attach(&dir).map(|tokens| {
            println!("token attached again in {}", tokens.display());
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyward-hsm-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
