//! The interactive console's loop: draw, wait for a key or the daemon, let the [`App`] decide,
//! carry out its effects. The only place where terminal, socket and clock meet.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event as TermEvent, KeyEventKind};

use crate::app::{App, Effect, Event, Purpose};
use crate::client::{self, Incoming};
use crate::terminal::TerminalGuard;
use crate::theme::Theme;
use crate::ui;

const TICK: Duration = Duration::from_secs(1);
/// How long to wait for a key before looking at the daemon's answers.
const POLL: Duration = Duration::from_millis(50);

/// Runs the console until the operator quits, or a SIGTERM/SIGHUP/SIGINT arrives.
pub fn run(socket: PathBuf) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "the interactive console needs a terminal; for scripts use 'keyward-console --socket PATH status --user NAME'"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("keyward-console-link")
        .enable_all()
        .build()?;
    let (report, incoming) = channel();
    let client = client::start(runtime.handle(), socket.clone(), report.clone());
    runtime.spawn(watch_signals(report));

    let mut app = App::new(socket.display().to_string());
    let theme = Theme::from_env();
    let mut guard = TerminalGuard::enter()?;
    let result = event_loop(&mut guard, &mut app, theme, &client, &incoming);
    drop(guard);
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

fn event_loop(
    guard: &mut TerminalGuard,
    app: &mut App,
    theme: Theme,
    client: &client::Client<Purpose>,
    incoming: &Receiver<Incoming<Purpose>>,
) -> anyhow::Result<()> {
    let mut last_tick = Instant::now();
    loop {
        guard.terminal.draw(|frame| ui::render(app, theme, frame))?;
        let mut events = Vec::new();
        if event::poll(POLL)? {
            match event::read()? {
                TermEvent::Key(key) if key.kind != KeyEventKind::Release => {
                    events.push(Event::Key(key));
                }
                // A resize redraws on the next pass; the layout is computed from the frame.
                _ => {}
            }
        }
        while let Ok(message) = incoming.try_recv() {
            events.push(match message {
                Incoming::Link(link) => Event::Link(link),
                Incoming::Reply { purpose, reply } => Event::Reply { purpose, reply },
                Incoming::Unsent { purpose, reason } => Event::Unsent { purpose, reason },
                Incoming::Terminate => return Ok(()),
            });
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            events.push(Event::Tick);
        }
        for event in events {
            for effect in app.handle(event) {
                match effect {
                    Effect::Send { purpose, request } => {
                        client.send(purpose, request);
                    }
                    Effect::Quit => return Ok(()),
                }
            }
        }
    }
}

/// How often the terminal is checked for having gone away.
const TERMINAL_CHECK: Duration = Duration::from_secs(1);
/// How long the event loop gets to stop by itself before the process leaves without it.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Raw mode turns Ctrl-C into a key, but a signal from outside must still restore the terminal;
/// and when the terminal goes away (its window closed, the SSH link dropped) the console stops
/// instead of lingering. The event loop is asked to stop first; if it does not within
/// [`STOP_GRACE`] (crossterm keeps re-reading a hung-up terminal's end of file inside its
/// poll, so the loop may never come round), the terminal is restored and the process leaves.
async fn watch_signals(report: Sender<Incoming<Purpose>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let mut check = tokio::time::interval(TERMINAL_CHECK);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = hup.recv() => break,
            _ = int.recv() => break,
            _ = check.tick() => {
                if !std::io::stdin().is_terminal() {
                    break;
                }
            }
        }
    }
    let _ = report.send(Incoming::Terminate);
    tokio::time::sleep(STOP_GRACE).await;
    crate::terminal::restore();
    std::process::exit(1);
}
