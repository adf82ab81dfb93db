//! The serial administration port (tokio-serial, 8N1). Each configured port is its own task and
//! its own session; a flood on one port never stalls another. When the line drops, everyone
//! logged in on it is logged out, and the port is reopened until it comes back.

pub mod command;
pub mod line;
mod render;

use std::time::Duration;

use keyward_proto::{ApiError, ErrorCode, Op, Password, Reply, Request, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio_serial::{DataBits, FlowControl, Parity, SerialPortBuilderExt, StopBits};
use tracing::{info, warn};

use crate::api::Api;
use crate::api::authz::requirement;
use crate::api::session::Session;
use crate::config::SerialConfig;
use crate::domain::audit::Channel;
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
            Ok(port) => {
                info!(port = %name, device = %config.device.display(), baud = config.baud, "serial port open");
                last_error.clear();
                let mut session = Session::new(Channel::Serial, format!("serial {name}"));
                let stopped = Port::new(&api, &mut session).run(port, &mut shutdown).await;
                let api2 = api.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    api2.logout_all(&mut session, "serial line dropped")
                })
                .await;
                if stopped {
                    return;
                }
                warn!(port = %name, "serial line dropped; reopening");
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
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(REOPEN_DELAY) => {}
        }
    }
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
    out: Vec<u8>,
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
            out: Vec::new(),
        }
    }

    /// Runs until the line drops (`false`) or shutdown (`true`).
    async fn run<P: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        port: P,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let (mut reader, mut writer) = tokio::io::split(port);
        let mut buf = [0u8; 512];
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        self.out
            .extend_from_slice(b"\r\nKeyward serial console. 'help' lists the commands.\r\n");
        self.write_prompt();
        loop {
            if !self.out.is_empty() {
                if writer.write_all(&self.out).await.is_err() || writer.flush().await.is_err() {
                    return false;
                }
                self.out.clear();
            }
            tokio::select! {
                _ = shutdown.changed() => return true,
                _ = tick.tick() => {
                    self.check_idle().await;
                    self.follow_tick().await;
                }
                read = reader.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => {
                        for &byte in &buf[..n] {
                            let mut echo = Vec::new();
                            let input = self.editor.feed(byte, &mut echo);
                            self.out.extend_from_slice(&echo);
                            if let Some(input) = input {
                                self.input(input).await;
                            }
                        }
                    }
                },
            }
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
                self.out.extend_from_slice(
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
            self.out.extend_from_slice(text.trim_ascii_end());
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.out.extend_from_slice(text);
        }
    }

    fn respond(&mut self, response: &Response) {
        match self.format {
            Format::Json => {
                self.out.extend_from_slice(
                    serde_json::to_string(response)
                        .unwrap_or_default()
                        .as_bytes(),
                );
                self.out.extend_from_slice(b"\r\n");
            }
            Format::Text => {
                if let Some(data) = &response.data {
                    for line in render::text(data) {
                        self.out.extend_from_slice(line.as_bytes());
                        self.out.extend_from_slice(b"\r\n");
                    }
                }
                let status = match &response.error {
                    None => "OK".to_owned(),
                    Some(e) => format!(
                        "ERR {} {}",
                        e.code.as_str(),
                        e.message.replace(['\r', '\n'], " ")
                    ),
                };
                self.out.extend_from_slice(status.as_bytes());
                self.out.extend_from_slice(b"\r\n");
            }
        }
    }

    fn error(&mut self, code: ErrorCode, message: impl Into<String>) {
        self.respond(&Response::err(ApiError::new(code, message)));
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

    async fn line(&mut self, prompt: Prompt, line: String) {
        match prompt {
            Prompt::LoginPassword(user) => {
                return self
                    .request(Request::Login {
                        user,
                        password: Password::new(line),
                    })
                    .await;
            }
            Prompt::PasswdOld(user) => {
                return self.ask(Prompt::PasswdNew(user, Password::new(line)));
            }
            Prompt::PasswdNew(user, old) => {
                return self.ask(Prompt::PasswdRepeat(user, old, Password::new(line)));
            }
            Prompt::PasswdRepeat(user, old, new) => {
                if new.expose() != line {
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
                self.respond(&Response::ok(serde_json::json!({ "format": if format == Format::Json { "json" } else { "text" } })));
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
            self.respond(&response);
            return self.write_prompt();
        };
        for line in &view.lines {
            match self.format {
                Format::Text => self.out.extend_from_slice(line.as_bytes()),
                Format::Json => self.out.extend_from_slice(
                    serde_json::json!({ "job": id, "log": line })
                        .to_string()
                        .as_bytes(),
                ),
            }
            self.out.extend_from_slice(b"\r\n");
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
            self.respond(&done);
            self.write_prompt();
        }
    }

    async fn request(&mut self, request: Request) {
        let response = self.api.handle(self.session, request).await;
        self.respond(&response);
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
            self.out.extend_from_slice(line.as_bytes());
            self.out.extend_from_slice(b"\r\n");
            return self.respond(&Response {
                ok: true,
                data: None,
                error: None,
            });
        }
        self.respond(&Response::ok(serde_json::Value::Array(entries)));
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
