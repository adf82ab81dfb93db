//! `keywardd run`: the serving loop. It takes its listener and shutdown signal as arguments
//! (as mini-redis does), so tests can run a real server.

use std::future::Future;
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::sync::watch;
use tracing::info;

use crate::api::Api;
use crate::appliance::Appliance;
use crate::config::{AuthConfig, AwsConfig, ConsoleConfig, SerialConfig};
use crate::error::Result;
use crate::front::{console, serial};
use crate::jobs::Jobs;

/// How long a stop waits for running jobs to reach a step boundary.
const JOB_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The front ends to serve.
pub struct Frontends {
    pub console: UnixListener,
    /// Uids allowed on the console socket.
    pub allowed_uids: Vec<u32>,
    /// The console's timeouts (`console.idle_timeout`, `console.line_timeout`).
    pub console_config: ConsoleConfig,
    /// Each port, with its device opened already (before a privilege drop) when that worked.
    pub serial: Vec<(SerialConfig, Option<tokio_serial::SerialStream>)>,
}

/// Serves until `shutdown` completes, then stops the front ends, records the stop and flushes.
pub async fn run(
    appliance: Arc<Appliance>,
    frontends: Frontends,
    policy: AuthConfig,
    aws: AwsConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let status = tokio::task::block_in_place(|| appliance.status())?;
    info!(
        hsm = %status.hsm.state,
        token = %status.hsm.token_label,
        serial = %status.hsm.serial,
        wrap = ?status.hsm.wrap_algorithms,
        missing_keys = status.hsm.missing_keys.len(),
        store = %status.store.path,
        schema = status.store.schema_version,
        audit_head = status.audit.head_seq,
        "keywardd ready"
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let connector = Arc::new(crate::cloud::aws::AwsConnector::new(
        tokio::runtime::Handle::current(),
        aws,
    ));
    let jobs = Jobs::new(appliance.clone(), connector);
    tokio::task::block_in_place(|| {
        jobs.resume_all()?;
        jobs.start_scheduler()
    })?;
    let mut tasks = tokio::task::JoinSet::new();
    let limits = console::Limits {
        idle: frontends.console_config.idle_timeout,
        line: frontends.console_config.line_timeout,
        session_idle: policy.idle_timeout,
    };
    let api = Api::new(jobs.clone(), policy);
    tasks.spawn(console::serve(
        frontends.console,
        api.clone(),
        frontends.allowed_uids,
        limits,
        stop_rx.clone(),
    ));
    for (port, opened) in frontends.serial {
        tasks.spawn(serial::serve(port, opened, api.clone(), stop_rx.clone()));
    }
    shutdown.await;
    info!("shutting down");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    // Jobs stop at their next step boundary (or resume at their step on the next start).
    tokio::task::block_in_place(|| jobs.shutdown(JOB_GRACE));
    tokio::task::block_in_place(|| {
        appliance.record_lifecycle("daemon.stop")?;
        appliance.store.flush()?;
        Ok::<_, crate::error::Error>(())
    })?;
    info!("stopped cleanly; everything flushed");
    Ok(())
}

/// Completes on SIGTERM or SIGINT; the handlers are installed when this is called.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    // Registered now, not when first polled: a SIGTERM that arrives while the front ends are
    // being opened must still mean a clean stop, not the default (immediate death).
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| crate::error::Error::Internal(format!("install the SIGTERM handler: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| crate::error::Error::Internal(format!("install the SIGINT handler: {e}")))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received"),
            _ = int.recv() => info!("SIGINT received"),
        }
    })
}
