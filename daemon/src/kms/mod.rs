//! Audited access to AWS KMS: every call any part of the appliance makes to AWS goes through
//! [`Kms::call`], which writes an attempt record before the call and the outcome after, and
//! refuses while the HSM is faulted. Jobs use it for their steps; the admin service for key
//! inspection and `group test` (`inspect.rs`). The SDK itself stays behind `crate::cloud`.

mod inspect;

use std::sync::Arc;

use crate::appliance::Appliance;
use crate::cloud::{CloudError, CloudKms, Connector, RetryLog};
use crate::domain::audit::{Actors, Outcome};
use crate::domain::groups::Group;
use crate::error::Result;

pub struct Kms {
    app: Arc<Appliance>,
    connector: Arc<dyn Connector>,
}

impl Kms {
    pub fn new(app: Arc<Appliance>, connector: Arc<dyn Connector>) -> Self {
        Self { app, connector }
    }

    /// A cloud client for the group, with the group's credential unsealed for this one
    /// client. Its retries and waits for quota are reported through `retries`.
    pub fn connect(&self, group: &Group, retries: RetryLog) -> Result<Box<dyn CloudKms>> {
        let (target, key) = self.app.cloud_access(group)?;
        Ok(self.connector.connect(&target, key, retries))
    }

    /// One audited AWS call: the attempt is recorded before, the outcome after.
    pub fn call<T>(
        &self,
        by: &Actors,
        job: Option<u64>,
        op: &str,
        on: &str,
        group: &Group,
        call: impl FnOnce() -> std::result::Result<T, CloudError>,
    ) -> Result<T> {
        // No AWS call while the HSM is faulted: the step waits and runs again after recovery.
        self.app.require_hsm()?;
        let action = format!("kms.{op}");
        let entry = |outcome| {
            let mut e = by
                .entry(&action, on, outcome)
                .detail("group", group.name.clone())
                .detail("region", group.region.clone())
                .detail("credential", group.credential.clone());
            if let Some(id) = job {
                e = e.detail("job", id.to_string());
            }
            e
        };
        self.app.audit.append(entry(Outcome::Attempt))?;
        let result = call();
        let outcome = match &result {
            Ok(_) => entry(Outcome::Success),
            Err(e) => entry(Outcome::Failure).detail("error", e.to_string()),
        };
        self.app.audit.append(outcome)?;
        Ok(result?)
    }
}
