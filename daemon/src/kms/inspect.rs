//! Reading AWS for an operator: `key show` (the key's state, live) and `group test` (can the
//! group's credential reach KMS, and may it do what a rotation needs). Each AWS call is audited.

use std::sync::Arc;

use keyward_proto::{Connection, GroupTestCheck, GroupTestReport, KeyView, SeenState};
use tracing::warn;

use super::Kms;
use crate::cloud::RetryLog;
use crate::domain::audit::Actors;
use crate::error::{Error, Result};

/// Retries of an operator's request go to the daemon's log (there is no job log to show them).
fn warn_only() -> RetryLog {
    Arc::new(|line: String| warn!("{line}"))
}

impl Kms {
    /// `key show`: the key, with its KMS state read live (the stored one if AWS cannot say).
    pub fn key_show(&self, by: &Actors, key: &str) -> Result<KeyView> {
        let mut record = self.app.customer_key(key)?;
        let Some(mut binding) = record.cloud.clone() else {
            return Ok(crate::appliance::key_view(
                &record,
                self.app.rotation.expiry_warning,
            ));
        };
        if let (Some(aws_id), Ok(group)) = (
            binding.aws_key_id.clone(),
            self.app.get_group(&binding.group),
        ) {
            let live = self.connect(&group, warn_only()).and_then(|cloud| {
                self.call(by, None, "DescribeKey", &aws_id, &group, || {
                    cloud.describe_key(&aws_id)
                })
            });
            match live {
                Ok(k) => {
                    binding.aws_key_state = Some(k.state);
                    record.cloud = Some(binding);
                    self.app.store.put_key(&record)?;
                    self.app.store.flush()?;
                }
                Err(e) => {
                    // Shown as last seen, and why AWS did not say; the record keeps it as seen.
                    let mut view =
                        crate::appliance::key_view(&record, self.app.rotation.expiry_warning);
                    view.aws_key_state = Some(SeenState {
                        state: binding.aws_key_state.clone(),
                        unanswered: Some(e.to_string()),
                    });
                    return Ok(view);
                }
            }
        }
        Ok(crate::appliance::key_view(
            &record,
            self.app.rotation.expiry_warning,
        ))
    }

    /// `group test`: can this group's credential reach KMS, and may it do what rotation needs?
    /// Each check is one audited call; a failed check records the AWS error as its detail.
    pub fn group_test(&self, by: &Actors, name: &str) -> Result<GroupTestReport> {
        let group = self.app.get_group(name)?;
        self.app.audited(by, "group.test", name, || {
            let cloud = self.connect(&group, warn_only())?;
            let mut checks = Vec::new();
            let mut check = |permission: &str,
                             op: &str,
                             on: &str,
                             call: &dyn Fn() -> crate::cloud::CloudResult<String>|
             -> Result<bool> {
                let (ok, detail) = match self.call(by, None, op, on, &group, call) {
                    Ok(detail) => (true, detail),
                    Err(Error::Cloud(e)) => (false, e.message),
                    Err(other) => return Err(other),
                };
                checks.push(GroupTestCheck {
                    permission: permission.into(),
                    ok,
                    detail,
                });
                Ok(ok)
            };
            let connected = check("kms:ListKeys", "ListKeys", "the account", &|| {
                cloud.list_keys_probe().map(|_| "allowed".into())
            })?;
            if connected {
                let target = std::cell::RefCell::new(None);
                check("kms:ListAliases", "ListAliases", &group.alias, &|| {
                    let found = cloud.alias_target(&group.alias)?;
                    let detail = match &found {
                        Some(key) => format!("{} points at {key}", group.alias),
                        None => format!("{} does not exist yet", group.alias),
                    };
                    *target.borrow_mut() = found;
                    Ok(detail)
                })?;
                let target = target.into_inner();
                for key in target.iter().chain(group.active_key_id.iter()) {
                    check("kms:DescribeKey", "DescribeKey", key, &|| {
                        cloud
                            .describe_key(key)
                            .map(|k| format!("{} is {} (origin {})", k.key_id, k.state, k.origin))
                    })?;
                }
            }
            Ok(GroupTestReport {
                group: name.to_owned(),
                connection: if connected {
                    Connection::Connected
                } else {
                    Connection::NotConnected
                },
                endpoint: group
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://kms.{}.amazonaws.com", group.region)),
                checks,
            })
        })
    }
}
