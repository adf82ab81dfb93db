//! Pending approvals: one administrator's request for a two-administrator operation, waiting
//! for a second administrator's `approve ID` on any front end. Approved requests run once;
//! expired ones are refused. Held in memory: a restart drops pending requests (each is audited).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use keyward_proto::{PendingApproval, Request};

use super::authz::describe;
use crate::appliance::Appliance;
use crate::domain::audit::Channel;
use crate::domain::{format_ms, now_ms};
use crate::error::{Error, Result};

struct Pending {
    request: Request,
    requester: String,
    channel: Channel,
    created_ms: u64,
    expires_ms: u64,
}

#[derive(Default)]
pub struct Approvals {
    inner: Mutex<BTreeMap<u64, Pending>>,
}

impl Approvals {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Pending>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a request awaiting approval; returns its id.
    pub fn request(
        &self,
        app: &Appliance,
        requester: &str,
        channel: Channel,
        request: Request,
        ttl: Duration,
    ) -> Result<u64> {
        let now = now_ms();
        let expires_ms = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let mut guard = self.lock();
        // The id is the sequence number of the request's own audit record: unique for the
        // life of the appliance, across restarts, and it points at the record.
        let id =
            app.record_approval_request(requester, channel, &describe(&request), expires_ms)?;
        guard.retain(|_, p| p.expires_ms > now);
        guard.insert(
            id,
            Pending {
                request,
                requester: requester.to_owned(),
                channel,
                created_ms: now,
                expires_ms,
            },
        );
        Ok(id)
    }

    pub fn list(&self) -> Vec<PendingApproval> {
        let now = now_ms();
        self.lock()
            .iter()
            .filter(|(_, p)| p.expires_ms > now)
            .map(|(id, p)| PendingApproval {
                id: *id,
                requested_by: p.requester.clone(),
                channel: p.channel.as_str().into(),
                operation: describe(&p.request),
                requested: format_ms(p.created_ms),
                expires: format_ms(p.expires_ms),
            })
            .collect()
    }

    /// Takes request `id` for approval by one of `approvers`. Returns the request and who
    /// performs it (requester, approver). The requester cannot approve their own request.
    pub fn take(&self, id: u64, approvers: &[String]) -> Result<(Request, Vec<String>)> {
        let mut guard = self.lock();
        let Some(pending) = guard.get(&id) else {
            return Err(Error::NotFound(format!(
                "no pending request {id}: it already ran, expired, or never existed ('pending' lists them)"
            )));
        };
        if pending.expires_ms <= now_ms() {
            guard.remove(&id);
            return Err(Error::NotFound(format!(
                "request {id} expired; ask for it again"
            )));
        }
        let Some(approver) = approvers.iter().find(|a| **a != pending.requester) else {
            return Err(Error::DualControl(format!(
                "you cannot approve your own request {id}; a second administrator must run 'approve {id}'"
            )));
        };
        let approver = approver.clone();
        let pending = guard
            .remove(&id)
            .ok_or_else(|| Error::Internal("approval vanished".into()))?;
        Ok((
            pending.request.clone(),
            vec![pending.requester.clone(), approver],
        ))
    }
}
