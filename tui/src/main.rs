//! `keyward-console`: the local console. Without a subcommand it runs the interactive ratatui
//! console (see the library); `status` logs in and prints the daemon's status, for scripts.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keyward_proto::{Op, Password, Reply, Request, Response, StatusReport, read_line, write_json};
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
    /// Log in and print HSM, store, audit and scheduler status.
    Status {
        /// The user to log in as.
        #[arg(long)]
        user: String,
        /// Read the password from this file (mode 0600) instead of prompting.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Print the raw JSON response.
        #[arg(long)]
        json: bool,
    },
}

/// Reads the password: from a file only its owner can read, or from the terminal without echo.
fn password(file: Option<&PathBuf>) -> anyhow::Result<Password> {
    if let Some(path) = file {
        use secrecy::ExposeSecret;
        let secret = keyward_secret_file::read_secret(path, "password file")?;
        return Ok(Password::new(secret.expose_secret()));
    }
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin)
        .map_err(|_| anyhow::anyhow!("no terminal to prompt on; use --password-file"))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet)?;
    eprint!("Password: ");
    let mut line = zeroize::Zeroizing::new(String::new());
    let read = stdin.read_line(&mut line);
    tcsetattr(&stdin, SetArg::TCSANOW, &saved)?;
    eprintln!();
    read?;
    Ok(Password::new(line.trim_end_matches(['\r', '\n'])))
}

/// One console session: requests in order on one connection; stops at the first error.
async fn session(socket: &PathBuf, requests: &[Request]) -> anyhow::Result<Vec<Response>> {
    let stream = UnixStream::connect(socket).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach keywardd at {}: {e}; is the daemon running?",
            socket.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut responses = Vec::new();
    for request in requests {
        write_json(&mut write, request).await?;
        let line = read_line(&mut reader)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the daemon closed the connection"))?;
        let response: Response = serde_json::from_str(&line)?;
        let ok = response.ok;
        responses.push(response);
        if !ok {
            break;
        }
    }
    Ok(responses)
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
    let sc = &s.scheduler;
    println!(
        "Schedule {} — designated rotator: {}, {} scheduled group(s), next due {}, {} of {} rotation slot(s) busy",
        sc.state,
        if sc.designated { "yes" } else { "no" },
        sc.scheduled_groups,
        sc.next_due.as_deref().unwrap_or("-"),
        sc.running_rotations,
        sc.concurrency
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(Command::Status {
        user,
        password_file,
        json,
    }) = cli.command
    else {
        return match keyward_console::run::run(cli.socket) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("keyward-console: {e}");
                ExitCode::FAILURE
            }
        };
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
        let login = Request::Login {
            user,
            password: password(password_file.as_ref())?,
        };
        let mut responses = session(&cli.socket, &[login, Request::Status]).await?;
        let response = responses
            .pop()
            .ok_or_else(|| anyhow::anyhow!("no response"))?;
        if json {
            println!("{}", serde_json::to_string(&response)?);
            return Ok(response.ok);
        }
        let reply = response
            .decode(Op::Status)
            .map_err(|e| anyhow::anyhow!("ERR {} {}", e.code.as_str(), e.message))?;
        let Reply::Status(status) = reply else {
            anyhow::bail!("the daemon answered status with {}", reply.op().name());
        };
        print_status(&status);
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
