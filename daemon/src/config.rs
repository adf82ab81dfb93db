//! The daemon's TOML configuration. Unknown keys are errors; a missing file is reported with the
//! config key and line that named it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::hardening::{Owners, Trust, check_trusted};
use crate::secret_file::{SecretFileError, check_private};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the sled database lives.
    pub data_dir: Spanned<PathBuf>,
    pub hsm: HsmConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    /// Serial administration ports; each is served on its own.
    #[serde(default)]
    pub serial: Vec<SerialConfig>,
    /// Started as root, drop to this user after opening what needs privilege.
    #[serde(default)]
    pub user: Option<String>,
    /// Where firmware images are installed from the daemon (`firmware install`).
    #[serde(default)]
    pub firmware: Option<FirmwareConfig>,
    /// Scheduled rotation, expiry warnings and the rotation concurrency limit.
    #[serde(default)]
    pub rotation: RotationConfig,
    /// How the daemon calls AWS KMS: timeouts, attempts, and per-quota pacing.
    #[serde(default)]
    pub aws: AwsConfig,
    #[serde(skip)]
    pub source: ConfigSource,
}

/// Where the config came from, so later checks can name the line.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub path: PathBuf,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// The vendor's PKCS#11 module (a shared library).
    pub module: Spanned<PathBuf>,
    /// The token is found by this label, never by slot number.
    pub token_label: String,
    /// The user PIN, in a file only the daemon's user may read.
    pub pin_file: Spanned<PathBuf>,
    /// Environment the module needs before it is loaded (SoftHSM: `SOFTHSM2_CONF`).
    #[serde(default)]
    pub module_env: BTreeMap<String, String>,
    /// How many PKCS#11 sessions to keep open at most.
    #[serde(default = "default_sessions")]
    pub sessions: usize,
}

fn default_sessions() -> usize {
    4
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// The local console socket; default `DATA_DIR/console.sock`.
    pub socket: Option<PathBuf>,
    /// Unix users allowed to connect besides the daemon's own user.
    pub allowed_uids: Vec<u32>,
    /// A connection with nobody logged in that sends nothing this long is closed.
    #[serde(deserialize_with = "positive_duration")]
    pub idle_timeout: Duration,
    /// A request line, once begun, must be complete within this.
    #[serde(deserialize_with = "positive_duration")]
    pub line_timeout: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            socket: None,
            allowed_uids: Vec::new(),
            idle_timeout: Duration::from_secs(5 * 60),
            line_timeout: Duration::from_secs(10),
        }
    }
}

/// A duration (`10s`, `5m`) longer than zero.
fn positive_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let duration = crate::domain::duration::serde_text::deserialize(d)?;
    if duration.is_zero() {
        return Err(serde::de::Error::custom("must be longer than 0s"));
    }
    Ok(duration)
}

/// Login and dual-control policy. Failed logins count per name and per front end (the local
/// console; the serial ports together): see docs/threat-model.md, "Failed logins".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Failed logins in a row on one front end, each within `lockout` of the one before, that
    /// lock the name on that front end.
    pub max_failed_logins: u32,
    /// How long such a lock lasts; a failure is forgotten this long after the last one.
    #[serde(with = "crate::domain::duration::serde_text")]
    pub lockout: Duration,
    /// A session with no request for this long is logged out.
    #[serde(with = "crate::domain::duration::serde_text")]
    pub idle_timeout: Duration,
    /// How long a request waits for a second administrator's approval.
    #[serde(with = "crate::domain::duration::serde_text")]
    pub approval_ttl: Duration,
}

impl AuthConfig {
    /// The lockout rule the domain applies.
    pub fn lockout_policy(&self) -> crate::domain::users::Lockout {
        crate::domain::users::Lockout {
            max_failures: self.max_failed_logins,
            lockout_ms: u64::try_from(self.lockout.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            max_failed_logins: 5,
            lockout: Duration::from_secs(15 * 60),
            idle_timeout: Duration::from_secs(10 * 60),
            approval_ttl: Duration::from_secs(10 * 60),
        }
    }
}

/// The scheduler. `designated` only seeds the `rotation.designated` setting on the first start;
/// after that `settings set` changes it and the database holds it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotationConfig {
    /// Whether this appliance runs scheduled rotations (the designated rotator).
    pub designated: bool,
    /// How often the scheduler looks for due groups, expiring keys and HSM faults.
    #[serde(with = "crate::domain::duration::serde_text")]
    pub check_every: Duration,
    /// How long before a key's material expires a warning is audited.
    #[serde(with = "crate::domain::duration::serde_text")]
    pub expiry_warning: Duration,
    /// The first wait after a failed scheduled rotation; it doubles on each failure.
    #[serde(with = "crate::domain::duration::serde_text")]
    pub retry_after: Duration,
    /// The longest wait between retries of a failed scheduled rotation.
    #[serde(with = "crate::domain::duration::serde_text")]
    pub retry_max: Duration,
    /// Rotation jobs that run at once (scheduled or forced); the rest wait for a slot.
    pub concurrency: usize,
}

impl Default for RotationConfig {
    fn default() -> Self {
        Self {
            designated: true,
            check_every: Duration::from_secs(5),
            expiry_warning: Duration::from_secs(14 * 86_400),
            retry_after: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            concurrency: 4,
        }
    }
}

/// AWS KMS calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    #[serde(with = "crate::domain::duration::serde_text")]
    pub connect_timeout: Duration,
    /// One attempt of one call; a stalled answer counts as a failed attempt after this.
    #[serde(with = "crate::domain::duration::serde_text")]
    pub call_timeout: Duration,
    /// Attempts per call, the first included (throttling, 5xx, timeouts and dropped
    /// connections are retried with exponential backoff and full jitter).
    pub attempts: u32,
    /// Calls per (credential, region), as `N/DURATION` or `off`.
    pub quotas: Quotas,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
            attempts: 6,
            quotas: Quotas::default(),
        }
    }
}

/// Pacing per (credential, region). The defaults are AWS's published request quotas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quotas {
    pub get_parameters_for_import: Rate,
    pub import_key_material: Rate,
    pub create_key: Rate,
    /// CreateAlias, UpdateAlias, DeleteAlias.
    pub alias: Rate,
    /// PutKeyPolicy.
    pub policy: Rate,
    /// Every other KMS call (off by default: AWS's quotas for them are far above a rotation's).
    pub other: Rate,
}

impl Default for Quotas {
    fn default() -> Self {
        let per_second = |n| Rate::Limit {
            calls: n,
            per: Duration::from_secs(1),
        };
        Self {
            get_parameters_for_import: Rate::Limit {
                calls: 1,
                per: Duration::from_secs(4),
            },
            import_key_material: per_second(5),
            create_key: per_second(5),
            alias: per_second(5),
            policy: per_second(5),
            other: Rate::Off,
        }
    }
}

pub use crate::domain::schedule::Rate;

/// Firmware installation through the daemon.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareConfig {
    /// The A/B root that `keyward-image` manages.
    pub root: PathBuf,
    /// The Ed25519 public key images must be signed with.
    pub public_key: PathBuf,
}

/// One serial administration port, 8N1.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialConfig {
    /// The tty, e.g. `/dev/ttyS0` or `/dev/ttyUSB0`.
    pub device: PathBuf,
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Shown in logs and audit records; default: the device path.
    #[serde(default)]
    pub name: Option<String>,
}

fn default_baud() -> u32 {
    115_200
}

impl SerialConfig {
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.device.display().to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: String, message: String },
    /// The config itself could have been changed by someone it must not trust.
    #[error("config {path}: {problem}")]
    Untrusted { path: String, problem: String },
    #[error("config {path} line {line}: {key} = {value}: {problem}")]
    File {
        path: String,
        line: usize,
        key: &'static str,
        value: String,
        problem: String,
    },
}

impl Config {
    /// Reads, parses and checks the config: the files it names exist, the PIN file is private.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        // The config names the PIN file and the HSM: only its owner may read it.
        match check_private(path, "config file") {
            Ok(()) => {}
            Err(SecretFileError::Io { source, .. }) => {
                return Err(ConfigError::Read {
                    path: shown,
                    source,
                });
            }
            Err(other) => {
                return Err(ConfigError::Parse {
                    path: shown,
                    message: other.to_string(),
                });
            }
        }
        // It names the module, which runs as root: only root (or whoever started a daemon that
        // is not root) may be able to change it.
        check_trusted(path, Trust::Code, &Owners::for_start(None)).map_err(|problem| {
            ConfigError::Untrusted {
                path: shown.clone(),
                problem,
            }
        })?;
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut config = Self::parse(&text, path)?;
        config.check_files()?;
        Ok(config)
    }

    /// Parses without touching the file system (used by `load` and tests).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.source = ConfigSource {
            path: path.to_path_buf(),
            text: text.to_owned(),
        };
        if config.auth.max_failed_logins == 0 {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message: "auth.max_failed_logins must be at least 1".into(),
            });
        }
        let r = &config.rotation;
        let rotation_problem = if r.concurrency == 0 {
            Some("rotation.concurrency must be at least 1")
        } else if r.retry_after > r.retry_max {
            Some("rotation.retry_after must not be longer than rotation.retry_max")
        } else if r.check_every < Duration::from_secs(1) {
            Some("rotation.check_every must be at least 1s")
        } else if r.retry_after.is_zero() {
            Some("rotation.retry_after must be longer than 0s")
        } else if config.aws.attempts == 0 {
            Some("aws.attempts must be at least 1")
        } else if config.aws.call_timeout.is_zero() || config.aws.connect_timeout.is_zero() {
            Some("aws.call_timeout and aws.connect_timeout must be longer than 0s")
        } else {
            None
        };
        if let Some(message) = rotation_problem {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message: message.into(),
            });
        }
        if config.hsm.sessions == 0 {
            return Err(ConfigError::Parse {
                path: path.display().to_string(),
                message: "hsm.sessions must be at least 1".into(),
            });
        }
        Ok(config)
    }

    fn line_of<T>(&self, spanned: &Spanned<T>) -> usize {
        let start = spanned.span().start.min(self.source.text.len());
        self.source.text[..start].matches('\n').count() + 1
    }

    /// An error naming the config key and line of `spanned`.
    pub fn file_error(
        &self,
        key: &'static str,
        spanned: &Spanned<PathBuf>,
        problem: impl Into<String>,
    ) -> ConfigError {
        ConfigError::File {
            path: self.source.path.display().to_string(),
            line: self.line_of(spanned),
            key,
            value: spanned.get_ref().display().to_string(),
            problem: problem.into(),
        }
    }

    /// Who may own the files this config names: root, whoever started the daemon, and for
    /// what is not code, the user it drops to.
    pub fn owners(&self) -> Owners {
        Owners::for_start(self.user.as_deref())
    }

    fn check_files(&mut self) -> Result<(), ConfigError> {
        if !self.hsm.module.get_ref().is_file() {
            return Err(self.file_error(
                "hsm.module",
                &self.hsm.module,
                "no such file; is the HSM vendor's PKCS#11 library installed?",
            ));
        }
        let owners = self.owners();
        let trusted = |key, spanned: &Spanned<PathBuf>, trust| {
            check_trusted(spanned.get_ref(), trust, &owners)
                .map_err(|problem| self.file_error(key, spanned, problem))
        };
        trusted("hsm.module", &self.hsm.module, Trust::Code)?;
        match check_private(self.hsm.pin_file.get_ref(), "PIN file") {
            Ok(()) => {}
            Err(SecretFileError::Io { source, .. }) => {
                return Err(self.file_error(
                    "hsm.pin_file",
                    &self.hsm.pin_file,
                    source.to_string(),
                ));
            }
            Err(other) => {
                return Err(self.file_error("hsm.pin_file", &self.hsm.pin_file, other.to_string()));
            }
        }
        trusted("hsm.pin_file", &self.hsm.pin_file, Trust::Data)?;
        if self.data_dir().exists() {
            trusted("data_dir", &self.data_dir, Trust::Data)?;
        }
        // Files named without a span: the module's configuration (an absolute path in its
        // environment, e.g. SOFTHSM2_CONF) and the firmware key, when they exist.
        let mut unspanned: Vec<(&'static str, String, PathBuf)> = self
            .hsm
            .module_env
            .iter()
            .filter(|(_, value)| Path::new(value).is_absolute())
            .map(|(name, value)| {
                (
                    "hsm.module_env",
                    format!("{name} = {value}"),
                    PathBuf::from(value),
                )
            })
            .collect();
        if let Some(firmware) = &self.firmware {
            unspanned.push((
                "firmware.public_key",
                firmware.public_key.display().to_string(),
                firmware.public_key.clone(),
            ));
        }
        for (key, value, path) in unspanned {
            if !path.is_file() {
                continue;
            }
            if let Err(problem) = check_trusted(&path, Trust::Data, &owners) {
                let shown = path.display().to_string();
                let line = self
                    .source
                    .text
                    .lines()
                    .position(|l| l.contains(&shown))
                    .map_or(0, |i| i + 1);
                return Err(ConfigError::File {
                    path: self.source.path.display().to_string(),
                    line,
                    key,
                    value,
                    problem,
                });
            }
        }
        Ok(())
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.get_ref()
    }

    pub fn socket_path(&self) -> PathBuf {
        self.console
            .socket
            .clone()
            .unwrap_or_else(|| self.data_dir().join("console.sock"))
    }

    /// Sets the module's environment. Call from `main` before any thread starts.
    pub fn apply_module_env(&self) {
        for (name, value) in &self.hsm.module_env {
            #[allow(
                unsafe_code,
                reason = "PKCS#11 modules such as SoftHSM read their configuration from the environment"
            )]
            // SAFETY: called from `main` before the async runtime or any other thread exists.
            unsafe {
                std::env::set_var(name, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "data_dir = \"/var/lib/keyward\"\n\n[hsm]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken_label = \"keyward\"\npin_file = \"/nonexistent/user.pin\"\n";

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = format!("{GOOD}colour = \"blue\"\n");
        let err = Config::parse(&text, Path::new("k.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
        assert!(err.contains("line 7"), "{err}");
    }

    #[test]
    fn missing_pin_file_names_key_and_line() {
        let mut config = Config::parse(GOOD, Path::new("k.toml")).unwrap();
        config.hsm.module = Spanned::new(0..0, PathBuf::from("/bin/sh"));
        let err = config.check_files().unwrap_err().to_string();
        assert!(err.contains("hsm.pin_file"), "{err}");
        assert!(err.contains("line 6"), "{err}");
        assert!(err.contains("/nonexistent/user.pin"), "{err}");
    }

    #[test]
    fn console_timeouts_have_defaults_and_refuse_zero() {
        let config = Config::parse(GOOD, Path::new("k.toml")).unwrap();
        assert_eq!(config.console.idle_timeout, Duration::from_secs(300));
        assert_eq!(config.console.line_timeout, Duration::from_secs(10));
        let config = Config::parse(
            &format!("{GOOD}\n[console]\nidle_timeout = \"2m\"\nline_timeout = \"3s\"\n"),
            Path::new("k.toml"),
        )
        .unwrap();
        assert_eq!(config.console.idle_timeout, Duration::from_secs(120));
        assert_eq!(config.console.line_timeout, Duration::from_secs(3));
        let zero = Config::parse(
            &format!("{GOOD}\n[console]\nline_timeout = \"0s\"\n"),
            Path::new("k.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            zero.contains("line_timeout") && zero.contains("longer than 0s"),
            "{zero}"
        );
    }

    #[test]
    fn auth_and_serial_tables_parse_with_units() {
        let text = format!(
            "{GOOD}\n[auth]\nlockout = \"30m\"\nidle_timeout = \"90s\"\n\n[[serial]]\ndevice = \"/dev/ttyS0\"\n\n[[serial]]\ndevice = \"/dev/ttyUSB0\"\nbaud = 9600\nname = \"rack-a\"\n"
        );
        let config = Config::parse(&text, Path::new("k.toml")).unwrap();
        assert_eq!(config.auth.lockout, Duration::from_secs(1800));
        assert_eq!(config.auth.idle_timeout, Duration::from_secs(90));
        assert_eq!(config.auth.max_failed_logins, 5);
        assert_eq!(config.serial.len(), 2);
        assert_eq!(config.serial[0].baud, 115_200);
        assert_eq!(config.serial[0].name(), "/dev/ttyS0");
        assert_eq!(config.serial[1].name(), "rack-a");
        let bad = format!("{GOOD}\n[auth]\nlockout = \"15\"\n");
        let err = Config::parse(&bad, Path::new("k.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no unit") && err.contains("line 9"), "{err}");
    }

    #[test]
    fn rotation_and_aws_tables_parse_and_bad_values_are_named() {
        let text = format!(
            "{GOOD}\n[rotation]\nconcurrency = 16\ncheck_every = \"1s\"\n\n[aws]\ncall_timeout = \"2s\"\n\n[aws.quotas]\nget_parameters_for_import = \"off\"\ncreate_key = \"10/1s\"\n"
        );
        let config = Config::parse(&text, Path::new("k.toml")).unwrap();
        assert_eq!(config.rotation.concurrency, 16);
        assert_eq!(config.aws.call_timeout, Duration::from_secs(2));
        assert_eq!(config.aws.quotas.get_parameters_for_import, Rate::Off);
        assert_eq!(config.aws.quotas.create_key.to_string(), "10/1s");
        assert_eq!(config.aws.quotas.alias.to_string(), "5/1s");
        for (table, problem) in [
            ("[rotation]\nconcurrency = 0\n", "rotation.concurrency"),
            (
                "[rotation]\nretry_after = \"2h\"\n",
                "rotation.retry_after must not be longer",
            ),
            ("[aws]\nattempts = 0\n", "aws.attempts"),
            ("[aws.quotas]\nalias = \"5\"\n", "CALLS/DURATION"),
        ] {
            let err = Config::parse(&format!("{GOOD}\n{table}"), Path::new("k.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(problem), "{table}: {err}");
        }
    }

    #[test]
    fn defaults_fill_in() {
        let config = Config::parse(GOOD, Path::new("k.toml")).unwrap();
        assert_eq!(config.hsm.sessions, 4);
        assert_eq!(config.auth.idle_timeout, Duration::from_secs(600));
        assert_eq!(
            config.socket_path(),
            PathBuf::from("/var/lib/keyward/console.sock")
        );
    }
}
