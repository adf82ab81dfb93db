//! The running appliance most AWS tests start from: token, database, daemon, both
//! administrators on one console, credential `prod` imported, and a KMS client of the test's
//! own region.

use std::path::PathBuf;

use keyward_proto::Request;

use crate::{
    ACCESS_KEY_ID, Console, Daemon, Fixture, Kms, SECRET_ACCESS_KEY, group_fields, write_private,
};

impl Fixture {
    /// Starts the daemon and, as both administrators, imports the test access key as
    /// credential `prod` (from the AWS console's CSV).
    pub fn start_with_credential(&self) -> (Daemon, Console) {
        let daemon = self.start();
        let mut console = daemon.admins();
        let csv = self.credentials_csv();
        let view = console.ok(&Request::CredentialImport {
            name: "prod".into(),
            path: csv.display().to_string(),
        });
        assert_eq!(view["access_key_id"], "****************MPLE", "{view}");
        (daemon, console)
    }

    /// The AWS console's CSV for the test access key, in the fixture directory.
    pub fn credentials_csv(&self) -> PathBuf {
        let path = self.dir.path().join("prod_accessKeys.csv");
        write_private(
            &path,
            &format!(
                "\u{feff}Access key ID,Secret access key\r\n{ACCESS_KEY_ID},{SECRET_ACCESS_KEY}\r\n"
            ),
        );
        path
    }
}

/// A running appliance on the KMS peer, as most AWS tests start: a fresh token and database,
/// the daemon, both administrators logged in on one console with credential `prod` imported,
/// and a KMS client of the test's region (each test has its own, so tests never see each
/// other's keys).
pub struct Appliance {
    pub fx: Fixture,
    pub daemon: Option<Daemon>,
    pub console: Option<Console>,
    pub kms: Kms,
    pub region: &'static str,
    /// Objects on the token after first boot (system keys and the audit anchor).
    pub token_objects: usize,
}

impl Appliance {
    /// `config` (may be empty) is appended to the config file before the first start.
    pub fn new(region: &'static str, config: &str) -> Self {
        let kms = Kms::new(region);
        let fx = Fixture::new();
        fx.init_ok();
        if !config.is_empty() {
            fx.append_config(config);
        }
        let token_objects = fx.token_objects();
        let (daemon, console) = fx.start_with_credential();
        Self {
            fx,
            daemon: Some(daemon),
            console: Some(console),
            kms,
            region,
            token_objects,
        }
    }

    pub fn console(&mut self) -> &mut Console {
        self.console.as_mut().expect("console")
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("daemon running")
    }

    /// `group create` on the peer: credential `prod`, this region, `alias`, and `extra`.
    pub fn create_group(&mut self, name: &str, alias: &str, extra: &[(&str, &str)]) {
        let fields = group_fields(self.region, alias, extra);
        self.console().ok(&Request::GroupCreate {
            name: name.into(),
            fields,
        });
    }

    /// `key list GROUP`.
    pub fn keys(&mut self, group: &str) -> Vec<serde_json::Value> {
        self.console()
            .ok(&Request::KeyList {
                group: Some(group.into()),
            })
            .as_array()
            .expect("key list")
            .clone()
    }

    /// `job show ID`.
    pub fn job(&mut self, id: u64) -> serde_json::Value {
        self.console().ok(&Request::JobShow { id })
    }

    /// `job wait` that must succeed; a failure shows `what`, the job's log and the daemon's.
    pub fn wait_ok(&mut self, job: u64, what: &str) -> serde_json::Value {
        match self.console().wait(job) {
            Ok(view) => view,
            Err(e) => panic!(
                "{what}: job {job} failed: {e}\n{}\ndaemon log:\n{}",
                self.console().job_log(job).join("\n"),
                self.daemon().log_text()
            ),
        }
    }

    /// Stops the daemon cleanly and starts it again with `env`; both administrators log in.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.console = None;
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        let d = self.fx.start_with_env(env);
        self.console = Some(d.admins());
        self.daemon = Some(d);
    }
}
