//! The serial administration port (tokio-serial, 8N1). Each configured port is its own task and
//! its own session; a flood on one port never stalls another. When the line drops, everyone
//! logged in on it is logged out, and the port is reopened until it comes back. A line that
//! stops taking output (nothing accepted for `front::WRITE_TIMEOUT`) counts as dropped, and
//! what it holds either way (unread output, input typed ahead) is discarded. Every write and every request gives way to shutdown.

pub mod command;
pub mod line;
mod render;

use std::time::Duration;

use keyward_proto::{
    ApiError, ErrorCode, Op, Password, Reply, Request, Response, WipingBuf, wipe_json,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::watch;
use tokio_serial::{
    ClearBuffer, DataBits, FlowControl, Parity, SerialPort, SerialPortBuilderExt, StopBits,
};
use tracing::{info, warn};
use zeroize::{Zeroize, Zeroizing};

use crate::api::Api;
use crate::api::authz::requirement;
use crate::api::session::Session;
use crate::config::SerialConfig;
use crate::domain::audit::Channel;
use crate::front::{Unsent, WRITE_TIMEOUT, send, stopping};
use command::{COMMANDS, Command, Format, parse, spec};
use line::{Input, LineEditor, MAX_LINE};

/// How long to wait before reopening a port that failed or dropped.
const REOPEN_DELAY: Duration = Duration::from_secs(1);

/// Opens a port 8N1 at its configured speed, without flow control.
pub fn open(config: &SerialConfig) -> Result<tokio_serial::SerialStream, tokio_serial::Error> {
    tokio_serial::new(config.device.to_string_lossy(), config.baud)
        .data_bits(DataBits::Eight)
        .parity(Parity::None)
        .stop_bits(StopBits::One)
        .flow_control(FlowControl::None)
        .open_native_async()
}

/// Serves one port until shutdown, reopening it whenever the line drops. `first` is the port
/// opened before the daemon dropped its privileges, if that worked.
pub async fn serve(
    config: SerialConfig,
    first: Option<tokio_serial::SerialStream>,
    api: Api,
    mut shutdown: watch::Receiver<bool>,
) {
    let name = config.name();
    let mut last_error = String::new();
    let mut first = first;
    loop {
        let opened = match first.take() {
            Some(port) => Ok(port),
            None => open(&config),
        };
        match opened {
            Ok(mut port) => {
                info!(port = %name, device = %config.device.display(), baud = config.baud, "serial port open");
                last_error.clear();
                let mut session = Session::new(Channel::Serial, format!("serial {name}"));
                let ended = Port::new(&api, &mut session)
                    .run(&mut port, &mut shutdown)
                    .await;
                let reason = match ended {
                    Ended::Stalled => format!(
                        "serial line stalled: nothing could be sent for {}",
                        crate::domain::duration::format(WRITE_TIMEOUT)
                    ),
                    Ended::Dropped | Ended::Shutdown => "serial line dropped".to_owned(),
                };
                let api2 = api.clone();
                let _ = tokio::task::spawn_blocking(move || api2.logout_all(&mut session, &reason))
                    .await;
                match ended {
                    Ended::Shutdown => return,
                    Ended::Dropped => warn!(port = %name, "serial line dropped; reopening"),
                    Ended::Stalled => {
                        // As when a line drops: whoever uses it next gets neither this session's
                        // answers nor has the input typed ahead for it run.
                        let _ = port.clear(ClearBuffer::All);
                        warn!(port = %name, timeout = %crate::domain::duration::format(WRITE_TIMEOUT),
                            "serial line takes no output (nobody reads it); its users are logged out, what it holds either way discarded, and the port reopened");
                    }
                }
            }
            Err(e) => {
                let text = e.to_string();
                if text != last_error {
                    warn!(port = %name, device = %config.device.display(), error = %text, "cannot open serial port; retrying");
                    last_error = text;
                }
            }
        }
        tokio::select! {
            () = stopping(&mut shutdown) => return,
            () = tokio::time::sleep(REOPEN_DELAY) => {}
        }
    }
}

/// Why [`Port::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Shutdown,
    /// The line dropped (end of file, an I/O error).
    Dropped,
    /// The line took nothing for [`WRITE_TIMEOUT`].
    Stalled,
}

/// A question the port is waiting for an answer to (no echo while it waits).
enum Prompt {
    None,
    LoginPassword(String),
    PasswdOld(Option<String>),
    PasswdNew(Option<String>, Password),
    PasswdRepeat(Option<String>, Password, Password),
    CredentialKeyId(String),
    CredentialSecret(String, String),
}

struct Port<'a> {
    api: &'a Api,
    session: &'a mut Session,
    editor: LineEditor,
    format: Format,
    prompt: Prompt,
    /// `job log ID follow`: the job and the next log line to print.
    follow: Option<(u64, usize)>,
    /// What is to be written: echo (a name typed where a password belonged), answers (a
    /// one-time password). Wiped once written.
    out: WipingBuf,
}

impl<'a> Port<'a> {
    fn new(api: &'a Api, session: &'a mut Session) -> Self {
        Self {
            api,
            session,
            editor: LineEditor::new(),
            format: Format::Text,
            prompt: Prompt::None,
            follow: None,
            out: WipingBuf::new(),
        }
    }

    /// Runs until the line drops or stalls, or shutdown. What an input asks of the API gives
    /// way to shutdown too (a `job wait` may take an hour).
    async fn run<P: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        port: P,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ended {
        let (mut reader, mut writer) = tokio::io::split(port);
        // Wiped after each read: it may hold a password as it was typed.
        let mut buf = Zeroizing::new([0u8; 512]);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        self.out
            .extend(b"\r\nKeyward serial console. 'help' lists the commands.\r\n");
        self.write_prompt();
        loop {
            if !self.out.is_empty() {
                match send(&mut writer, &self.out, shutdown).await {
                    Ok(()) => self.out.clear(),
                    Err(Unsent::Shutdown) => return Ended::Shutdown,
                    Err(Unsent::Stalled) => return Ended::Stalled,
                    Err(Unsent::Closed) => return Ended::Dropped,
                }
            }
            let read = tokio::select! {
                () = stopping(shutdown) => return Ended::Shutdown,
                _ = tick.tick() => None,
                read = reader.read(&mut buf[..]) => match read {
                    Ok(0) | Err(_) => return Ended::Dropped,
                    Ok(n) => Some(n),
                },
            };
            let work = async {
                match read {
                    None => {
                        self.check_idle().await;
                        self.follow_tick().await;
                    }
                    Some(n) => {
                        for &byte in &buf[..n] {
                            let input = self.editor.feed(byte, &mut self.out);
                            if let Some(input) = input {
                                self.input(input).await;
                            }
                        }
                    }
                }
            };
            tokio::select! {
                () = stopping(shutdown) => return Ended::Shutdown,
                () = work => {}
            }
            buf.zeroize();
        }
    }

    async fn check_idle(&mut self) {
        let api = self.api.clone();
        let mut session = self.session.clone();
        let Ok((names, session)) =
            tokio::task::spawn_blocking(move || (api.expire_idle(&mut session), session)).await
        else {
            return;
        };
        *self.session = session;
        if !names.is_empty() {
            self.prompt = Prompt::None;
            self.editor.echo = self.format == Format::Text;
            if self.format == Format::Text {
                self.out.extend(
                    format!("\r\nlogged out after inactivity: {}\r\n", names.join(", ")).as_bytes(),
                );
                self.write_prompt();
            }
        }
    }

    fn write_prompt(&mut self) {
        let text: &[u8] = match (&self.prompt, self.format) {
            (Prompt::None, Format::Text) => b"keyward> ",
            (Prompt::None, Format::Json) => b"",
            (Prompt::LoginPassword(_), _) => b"Password: ",
            (Prompt::PasswdOld(_), _) => b"Current password: ",
            (Prompt::PasswdNew(..), _) => b"New password: ",
            (Prompt::PasswdRepeat(..), _) => b"Repeat new password: ",
            (Prompt::CredentialKeyId(_), _) => b"Access key ID: ",
            (Prompt::CredentialSecret(..), _) => b"Secret access key: ",
        };
        // In JSON mode every prompt is a line of its own (`Password:`), so scripts read lines.
        if self.format == Format::Json && !text.is_empty() {
            self.out.extend(text.trim_ascii_end());
            self.out.extend(b"\r\n");
        } else {
            self.out.extend(text);
        }
    }

    /// Shows a response; then it is wiped (an answer may carry a one-time password).
    fn respond(&mut self, mut response: Response) {
        self.show(&response);
        if let Some(data) = &mut response.data {
            wipe_json(data);
        }
    }

    fn show(&mut self, response: &Response) {
        match self.format {
            Format::Json => {
                // Straight into the buffer; a response that cannot be encoded shows as nothing,
                // as before, rather than as a copy of half of it.
                let mark = self.out.len();
                if serde_json::to_writer(&mut self.out, response).is_err() {
                    while self.out.len() > mark {
                        self.out.pop();
                    }
                }
                self.out.extend(b"\r\n");
            }
            Format::Text => {
                if let Some(data) = &response.data {
                    render::text(data, &mut self.out);
                }
                let status = match &response.error {
                    None => "OK".to_owned(),
                    Some(e) => format!(
                        "ERR {} {}",
                        e.code.as_str(),
                        e.message.replace(['\r', '\n'], " ")
                    ),
                };
                self.out.extend(status.as_bytes());
                self.out.extend(b"\r\n");
            }
        }
    }

    fn error(&mut self, code: ErrorCode, message: impl Into<String>) {
        self.respond(Response::err(ApiError::new(code, message)));
    }

    async fn input(&mut self, input: Input) {
        if self.follow.take().is_some() {
            // Any input stops following; the line itself is not a command.
            self.error(ErrorCode::Invalid, "stopped following the job log");
            self.write_prompt();
            return;
        }
        let prompt = std::mem::replace(&mut self.prompt, Prompt::None);
        // JSON mode is for scripts: no echo, so every line they read is a response or prompt.
        self.editor.echo = self.format == Format::Text;
        match input {
            Input::TooLong => self.error(
                ErrorCode::Invalid,
                format!("line longer than {MAX_LINE} bytes; discarded"),
            ),
            Input::NotUtf8 => self.error(ErrorCode::Invalid, "line is not valid UTF-8; discarded"),
            Input::Cancelled => {}
            Input::Line(line) => self.line(prompt, line).await,
        }
        if matches!(self.prompt, Prompt::None) && self.follow.is_none() {
            self.write_prompt();
        }
    }

    fn ask(&mut self, prompt: Prompt) {
        self.prompt = prompt;
        self.editor.echo = false;
        self.write_prompt();
    }

    /// A line typed; at a password prompt it is the password (wiped when `line` is dropped,
    /// after being copied once into the `Password` the request carries).
    async fn line(&mut self, prompt: Prompt, line: Zeroizing<String>) {
        match prompt {
            Prompt::LoginPassword(user) => {
                return self
                    .request(Request::Login {
                        user,
                        password: Password::new(line.as_str()),
                    })
                    .await;
            }
            Prompt::PasswdOld(user) => {
                return self.ask(Prompt::PasswdNew(user, Password::new(line.as_str())));
            }
            Prompt::PasswdNew(user, old) => {
                return self.ask(Prompt::PasswdRepeat(
                    user,
                    old,
                    Password::new(line.as_str()),
                ));
            }
            Prompt::PasswdRepeat(user, old, new) => {
                if new.expose() != line.as_str() {
                    return self.error(
                        ErrorCode::Invalid,
                        "the new passwords differ; nothing changed",
                    );
                }
                return self.request(Request::Passwd { user, old, new }).await;
            }
            Prompt::CredentialKeyId(name) => {
                self.editor.echo = false;
                return self.ask(Prompt::CredentialSecret(name, line.trim().to_owned()));
            }
            Prompt::CredentialSecret(name, access_key_id) => {
                return self
                    .request(Request::CredentialAdd {
                        name,
                        access_key_id,
                        secret_access_key: Password::new(line.trim()),
                    })
                    .await;
            }
            Prompt::None => {}
        }
        match parse(&line) {
            Ok(None) => {}
            Err(message) => self.error(ErrorCode::Invalid, message),
            Ok(Some(Command::Help(topic))) => self.help(topic.as_deref()),
            Ok(Some(Command::Format(format))) => {
                self.format = format;
                self.editor.echo = format == Format::Text;
                self.respond(Response::ok(serde_json::json!({ "format": if format == Format::Json { "json" } else { "text" } })));
            }
            Ok(Some(Command::Login(user))) => self.ask(Prompt::LoginPassword(user)),
            Ok(Some(Command::Passwd(user))) => self.ask(Prompt::PasswdOld(user)),
            Ok(Some(Command::CredentialAdd(name))) => {
                self.ask(Prompt::CredentialKeyId(name));
                // The access key id is not secret: echo it as it is typed.
                self.editor.echo = self.format == Format::Text;
            }
            Ok(Some(Command::JobFollow(id))) => {
                self.follow = Some((id, 0));
                self.follow_tick().await;
            }
            Ok(Some(Command::Api(request))) => self.request(request).await,
        }
    }

    /// Prints new lines of the followed job's log; at the end, OK or ERR and the prompt.
    async fn follow_tick(&mut self) {
        let Some((id, from)) = self.follow else {
            return;
        };
        let response = self
            .api
            .handle(
                self.session,
                Request::JobLog {
                    id,
                    from: Some(from),
                },
            )
            .await;
        let Ok(Reply::JobLog(view)) = response.clone().decode(Op::JobLog) else {
            self.follow = None;
            self.respond(response);
            return self.write_prompt();
        };
        for line in &view.lines {
            match self.format {
                Format::Text => self.out.extend(line.as_bytes()),
                Format::Json => self.out.extend(
                    serde_json::json!({ "job": id, "log": line })
                        .to_string()
                        .as_bytes(),
                ),
            }
            self.out.extend(b"\r\n");
        }
        self.follow = Some((id, view.next));
        if view.state.is_done() {
            self.follow = None;
            let done = self
                .api
                .handle(
                    self.session,
                    Request::JobWait {
                        id,
                        timeout_ms: Some(0),
                    },
                )
                .await;
            self.respond(done);
            self.write_prompt();
        }
    }

    async fn request(&mut self, request: Request) {
        let response = self.api.handle(self.session, request).await;
        self.respond(response);
    }

    /// `help`: the table, each command with what it needs, from the one authorization table.
    fn help(&mut self, topic: Option<&str>) {
        let entries: Vec<_> = COMMANDS
            .iter()
            .filter(|s| topic.is_none_or(|t| s.name == t || s.name.starts_with(&format!("{t} "))))
            .map(|s| {
                let needs = match parse(s.example) {
                    Ok(Some(Command::Api(r))) => needs(requirement(&r)),
                    Ok(Some(Command::Passwd(_))) => needs(requirement(&Request::Passwd { user: None, old: Password::new(""), new: Password::new("") })),
                    Ok(Some(Command::CredentialAdd(name))) => needs(requirement(&Request::CredentialAdd { name, access_key_id: String::new(), secret_access_key: Password::new("") })),
                    Ok(Some(Command::JobFollow(id))) => needs(requirement(&Request::JobLog { id, from: None })),
                    _ => "anyone",
                };
                serde_json::json!({ "command": s.name, "usage": s.usage, "summary": s.summary, "needs": needs })
            })
            .collect();
        if entries.is_empty() {
            let topic = topic.unwrap_or_default();
            return self.error(
                ErrorCode::NotFound,
                format!("no command '{topic}'; 'help' lists them"),
            );
        }
        if self.format == Format::Text
            && topic.is_some()
            && spec(topic.unwrap_or_default()).is_some()
        {
            let s = spec(topic.unwrap_or_default());
            let line = s
                .map(|s| format!("{}\r\n  {}", s.usage, s.summary))
                .unwrap_or_default();
            self.out.extend(line.as_bytes());
            self.out.extend(b"\r\n");
            return self.respond(Response {
                ok: true,
                data: None,
                error: None,
            });
        }
        self.respond(Response::ok(serde_json::Value::Array(entries)));
    }
}

fn needs(r: crate::api::authz::Requirement) -> &'static str {
    use crate::api::authz::Requirement::*;
    match r {
        Anyone => "anyone",
        OneUser => "one-user",
        OneAdministrator => "one-administrator",
        TwoAdministrators => "two-administrators",
    }
}
