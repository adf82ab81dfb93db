//! `keyward-console`: the local console. The ratatui screens arrive with their issue; today it
//! reports the daemon's status over the console socket, through the shared protocol crate.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyward_proto::{Request, Response, StatusReport, read_line, write_json};
use tokio::io::BufReader;
use tokio::net::UnixStream;

#[derive(Parser)]
#[command(name = "keyward-console", version, about = "The Keyward local console")]
struct Cli {
    /// The daemon's console socket.
    #[arg(long, default_value = "/var/lib/keyward/console.sock")]
    socket: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print HSM, store and audit status.
    Status {
        /// Print the raw JSON response.
        #[arg(long)]
        json: bool,
    },
}

async fn request(socket: &PathBuf, request: &Request) -> anyhow::Result<Response> {
    let stream = UnixStream::connect(socket).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach keywardd at {}: {e}; is the daemon running?",
            socket.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    write_json(&mut write, request).await?;
    let line = read_line(&mut BufReader::new(read))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the daemon closed the connection"))?;
    Ok(serde_json::from_str(&line)?)
}

fn print_status(s: &StatusReport) {
    println!("Keyward {}", s.version);
    println!(
        "HSM      {} — token '{}' serial {} ({} {})",
        s.hsm.state, s.hsm.token_label, s.hsm.serial, s.hsm.manufacturer, s.hsm.model
    );
    println!(
        "         wrap: {}",
        if s.hsm.wrap_algorithms.is_empty() {
            "none".into()
        } else {
            s.hsm.wrap_algorithms.join(", ")
        }
    );
    if !s.hsm.missing_keys.is_empty() {
        println!(
            "         MISSING from the token: {}",
            s.hsm.missing_keys.join(", ")
        );
    }
    println!(
        "Store    {} (schema {}, {} bytes, {} users, {} keys)",
        s.store.path, s.store.schema_version, s.store.size_bytes, s.store.users, s.store.keys
    );
    println!(
        "Audit    {} records, head {} {}",
        s.audit.records, s.audit.head_seq, s.audit.head_hash
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(Command::Status { json }) = cli.command else {
        eprintln!(
            "keyward-console: the interactive console is not built yet (issue 5); try 'keyward-console --socket PATH status'"
        );
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keyward-console: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let response = request(&cli.socket, &Request::Status).await?;
        if json {
            println!("{}", serde_json::to_string(&response)?);
            return Ok(response.ok);
        }
        let data = response
            .into_result()
            .map_err(|e| anyhow::anyhow!("ERR {} {}", e.code.as_str(), e.message))?;
        print_status(&serde_json::from_value(data)?);
        Ok::<_, anyhow::Error>(true)
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("keyward-console: {e}");
            ExitCode::FAILURE
        }
    }
}
