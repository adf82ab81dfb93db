//! The scheduler: unattended rotation. One thread wakes every `rotation.check_every` and
//!
//! 1. checks the HSM (a fault pauses everything that needs it; see `appliance::health`),
//! 2. marks expired keys and audits expiry warnings,
//! 3. on the designated rotator only, starts a rotation for every group that is due.
//!
//! A due group whose latest rotation failed gets that job retried (after its backoff), so a
//! failed rotation never leaves a second half-made key behind. A group never has more than one
//! unfinished job: submissions check, under one lock, before they store a job.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use keyward_proto::{JobView, ScheduleView, SchedulerStatus};
use tracing::{error, info, warn};

use super::{Jobs, view};
use crate::config::RotationConfig;
use crate::domain::audit::{Actors, AuditEntry, Channel, Outcome};
use crate::domain::duration;
use crate::domain::jobs::{Job, JobKind, JobState, Step};
use crate::domain::keys::{KeyPurpose, KeyState};
use crate::domain::schedule::{Backoff, Expiry, ScheduleState, expiry, next_due_ms};
use crate::domain::{format_ms, now_ms};
use crate::error::{Error, Result};

/// The name scheduled work is requested by, in jobs and audit records.
pub const SCHEDULER: &str = "scheduler";

pub fn backoff(config: &RotationConfig) -> Backoff {
    Backoff {
        first: config.retry_after,
        max: config.retry_max,
    }
}

fn scheduler_actors() -> Actors {
    Actors::new(vec![SCHEDULER.to_owned()], Channel::System)
}

impl Jobs {
    /// `job retry ID`: runs a failed job again from the step that failed.
    pub fn retry(self: &Arc<Self>, by: &Actors, id: u64) -> Result<JobView> {
        let _guard = self
            .submit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut job = self.get(id)?;
        if job.state != JobState::Failed {
            return Err(Error::Invalid(format!(
                "job {id} is {}; only a failed job can be retried",
                job.state.as_str()
            )));
        }
        let group = self.job_group(&job)?;
        if let Some(other) = self.app.unfinished_job(&group)? {
            return Err(Error::Invalid(format!(
                "job {} ({}) is already working on group {group}; 'job wait {}' first",
                other.id,
                other.kind.name(),
                other.id
            )));
        }
        if let Some(why) = self.stale(&job, &group)? {
            return Err(Error::Invalid(format!(
                "job {id} is stale: {why}; 'group rotate {group}' for a new rotation"
            )));
        }
        self.app.audited(by, "job.retry", &id.to_string(), || {
            let step = job.current_step().map_or("-", Step::as_str);
            job.state = JobState::Queued;
            job.error = None;
            job.finished_ms = None;
            job.log(
                now_ms(),
                format!(
                    "retry requested by {}: resuming at step {step}",
                    by.names.join(" and ")
                ),
            );
            self.save(&job)
        })?;
        self.start(id);
        Ok(view(&job))
    }

    /// Why a failed rotation should not be retried as it was planned: the group rotated or
    /// was changed since.
    fn stale(&self, job: &Job, group: &str) -> Result<Option<String>> {
        if !matches!(job.kind, JobKind::Rotate { .. }) {
            return Ok(None);
        }
        if self
            .app
            .store
            .get_schedule(group)?
            .last_success_ms
            .is_some_and(|t| t > job.created_ms)
        {
            return Ok(Some(format!("group {group} has rotated since it was made")));
        }
        let JobKind::Rotate { mode, .. } = &job.kind else {
            return Ok(None);
        };
        // A change matters when the plan depends on it: another rotation mode, or a KMS key
        // the job already made under the old region, credential or endpoint. A job that failed
        // before making one (say, at an endpoint that was wrong) is retried under the new fields.
        if let Some(g) = self.app.store.get_group(group)?
            && g.updated_ms > job.created_ms
            && (g.rotation_mode != *mode || job.data.aws_key_id.is_some())
        {
            return Ok(Some(format!(
                "group {group} was changed ('group set') since it was made, and the job had planned or made its KMS key under the old fields"
            )));
        }
        Ok(None)
    }

    /// The group a job works on (a synchronisation's: its key's group).
    pub(super) fn job_group(&self, job: &Job) -> Result<String> {
        match &job.kind {
            JobKind::Rotate { group, .. } => Ok(group.clone()),
            JobKind::Sync { key, .. } => self
                .app
                .store
                .get_key(key)?
                .and_then(|k| k.cloud)
                .map(|c| c.group)
                .ok_or_else(|| Error::NotFound(format!("key {key} is no longer in the database"))),
        }
    }

    /// Groups with a job that has not finished, and that job (from the jobs with a thread).
    fn busy_groups(&self) -> BTreeMap<String, Job> {
        let ids: Vec<u64> = self.lock_running().iter().copied().collect();
        let mut busy = BTreeMap::new();
        for id in ids {
            if let Ok(Some(job)) = self.app.store.get_job(id)
                && !job.state.is_done()
                && let Ok(group) = self.job_group(&job)
            {
                busy.insert(group, job);
            }
        }
        busy
    }

    /// Starts the scheduler thread.
    pub fn start_scheduler(self: &Arc<Self>) -> Result<()> {
        self.app.seed_settings()?;
        let me = self.clone();
        let thread = std::thread::Builder::new()
            .name("scheduler".into())
            .spawn(move || {
                let every = me.app.rotation.check_every;
                while !me.stopping.load(Ordering::SeqCst) {
                    me.tick();
                    let mut slept = Duration::ZERO;
                    while slept < every && !me.stopping.load(Ordering::SeqCst) {
                        let step = Duration::from_millis(100).min(every - slept);
                        std::thread::sleep(step);
                        slept += step;
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the scheduler thread: {e}")))?;
        *self
            .scheduler_thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(thread);
        Ok(())
    }

    fn set_status(&self, status: SchedulerStatus) {
        *self
            .scheduler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = status;
    }

    pub fn scheduler_status(&self) -> SchedulerStatus {
        let mut status = self
            .scheduler
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        status.running_rotations = self.rotations_running();
        status.concurrency = self.app.rotation.concurrency;
        // Whether this appliance rotates, and why not, as of now rather than the last pass: an
        // operator who has just changed rotation.designated sees the change at once. The
        // setting is read once; an unreadable one is logged by the scheduler's own pass.
        let setting = self.app.designated_setting();
        status.designated = matches!(setting, Ok(true));
        if status.state == "running" || status.state.starts_with("paused") {
            status.state = state_text(self.paused_by(&setting).as_deref());
        }
        status
    }

    /// Why scheduled rotation is paused everywhere, if it is.
    fn paused(&self) -> Option<String> {
        self.paused_by(&self.app.designated_setting())
    }

    /// As [`Self::paused`], with `rotation.designated` as already read.
    fn paused_by(&self, designated: &Result<bool>) -> Option<String> {
        if let Some(fault) = self.app.hsm_fault() {
            return Some(format!("HSM fault: {fault}"));
        }
        match designated {
            Ok(true) => {}
            Ok(false) => {
                return Some(
                    "this appliance is not the designated rotator (rotation.designated = false); force rotate still works"
                        .into(),
                );
            }
            Err(e) => {
                return Some(format!(
                    "the setting rotation.designated cannot be read ({e}); scheduled rotation waits for the database"
                ));
            }
        }
        None
    }

    /// One scheduler pass.
    fn tick(self: &Arc<Self>) {
        let fault = self.app.check_hsm();
        if let Err(e) = self.restart_orphans() {
            warn!(error = %e, "cannot list the jobs to resume; trying again on the next pass");
        }
        if fault.is_none()
            && let Err(e) = self.check_expiry()
        {
            warn!(error = %e, "expiry check failed; it runs again on the next pass");
        }
        let plans = match self.plans() {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "the scheduler cannot read the groups; it tries again on the next pass");
                return;
            }
        };
        let setting = self.app.designated_setting();
        if let Err(e) = &setting {
            error!(error = %e, "cannot read rotation.designated; scheduled rotation pauses");
        }
        let paused = self.paused_by(&setting);
        self.set_status(SchedulerStatus {
            state: state_text(paused.as_deref()),
            designated: matches!(setting, Ok(true)),
            scheduled_groups: plans.iter().filter(|p| p.due_ms.is_some()).count(),
            next_due: plans.iter().filter_map(|p| p.due_ms).min().map(format_ms),
            ..SchedulerStatus::default()
        });
        if paused.is_some() {
            return;
        }
        let now = now_ms();
        let busy = self.busy_groups();
        for plan in plans {
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            if plan.due_ms.is_none_or(|d| d > now) || busy.contains_key(&plan.group) {
                continue;
            }
            self.start_due(&plan);
        }
    }

    /// Starts (or retries) the rotation of a due group; a refusal counts as a failure.
    fn start_due(self: &Arc<Self>, plan: &Plan) {
        let by = scheduler_actors();
        // Another job got there first (a forced rotation or a sync): not a failure, just wait.
        if matches!(self.app.unfinished_job(&plan.group), Ok(Some(_))) {
            return;
        }
        let failed_job = plan.state.last_job.and_then(|id| {
            self.app
                .store
                .get_job(id)
                .ok()
                .flatten()
                .filter(|j| j.state == JobState::Failed)
        });
        let retryable = failed_job.filter(|job| matches!(self.stale(job, &plan.group), Ok(None)));
        let started = match retryable {
            Some(job) => {
                info!(group = %plan.group, job = job.id, failures = plan.state.failures, "scheduled rotation: retrying the failed job");
                self.retry(&by, job.id).map(|v| v.id)
            }
            None => {
                info!(group = %plan.group, "scheduled rotation: due");
                self.rotate(&by, &plan.group)
            }
        };
        if let Err(e) = started {
            warn!(group = %plan.group, error = %e, "the scheduled rotation could not start; retrying with backoff");
            let record = || -> Result<()> {
                let backoff = backoff(&self.app.rotation);
                self.app.update_schedule(&plan.group, |state| {
                    state.not_started(&e.to_string(), now_ms(), &backoff);
                })?;
                self.app.audit.append(
                    AuditEntry::new(
                        Channel::System,
                        "schedule.start-failed",
                        &plan.group,
                        Outcome::Failure,
                    )
                    .actors([SCHEDULER.to_owned()])
                    .detail("error", e.to_string()),
                )?;
                self.app.store.flush()?;
                Ok(())
            };
            if let Err(e) = record() {
                error!(group = %plan.group, error = %e, "cannot record the failed start");
            }
        }
    }

    /// Every group with its schedule state and next due time.
    fn plans(&self) -> Result<Vec<Plan>> {
        // One pass over the keys: the newest active key's creation time per group.
        let mut active: BTreeMap<String, u64> = BTreeMap::new();
        for key in self.app.store.list_keys()? {
            if let Some(c) = key.cloud.as_ref().filter(|c| c.state == KeyState::Active) {
                let newest = active.entry(c.group.clone()).or_insert(key.created_ms);
                *newest = (*newest).max(key.created_ms);
            }
        }
        let mut plans = Vec::new();
        for group in self.app.store.list_groups()? {
            let state = self.app.store.get_schedule(&group.name)?;
            let active = active.get(&group.name).copied();
            plans.push(Plan {
                due_ms: next_due_ms(&group, &state, active),
                every: group.rotate_every_s,
                group: group.name,
                state,
            });
        }
        Ok(plans)
    }

    /// `schedule list`.
    pub fn schedule_list(&self) -> Result<Vec<ScheduleView>> {
        let now = now_ms();
        let paused = self.paused();
        let busy = self.busy_groups();
        let running = self.rotations_running();
        let limit = self.app.rotation.concurrency;
        Ok(self
            .plans()?
            .into_iter()
            .map(|p| {
                let delay = match (p.due_ms, &paused, busy.get(&p.group)) {
                    (None, _, _) => None,
                    (Some(_), Some(why), _) => Some(format!("paused: {why}")),
                    (Some(_), None, Some(job)) if job.state == JobState::Queued && running >= limit => {
                        Some(format!(
                            "job {} waits for a rotation slot ({running} running; rotation.concurrency = {limit})",
                            job.id
                        ))
                    }
                    (Some(_), None, Some(job)) => Some(format!(
                        "job {} is {} (step {})",
                        job.id,
                        job.state.as_str(),
                        job.current_step().map_or("-", Step::as_str)
                    )),
                    (Some(_), None, None) if p.state.retry_at_ms.is_some_and(|t| t > now) => {
                        Some(format!(
                            "retrying after {} failure(s) at {}",
                            p.state.failures,
                            p.state.retry_at_ms.map(format_ms).unwrap_or_default()
                        ))
                    }
                    (Some(d), None, None) if d <= now => {
                        Some("due: starts on the next scheduler pass".into())
                    }
                    (Some(_), None, None) => None,
                };
                ScheduleView {
                    group: p.group,
                    rotate_every: p.every.map_or_else(
                        || "off".into(),
                        |s| duration::format(Duration::from_secs(s)),
                    ),
                    next_due: match p.due_ms {
                        None => "-".into(),
                        Some(d) if d <= now => "now".into(),
                        Some(d) => format_ms(d),
                    },
                    last_success: p.state.last_success_ms.map(format_ms),
                    last_result: p.state.last_result,
                    delay,
                }
            })
            .collect())
    }

    /// Marks keys whose material has expired and audits a warning once per key before that.
    fn check_expiry(&self) -> Result<()> {
        let now = now_ms();
        let warning = self.app.rotation.expiry_warning;
        for key in self.app.store.list_keys()? {
            let Some(binding) = key.cloud.as_ref() else {
                continue;
            };
            if key.purpose != KeyPurpose::Customer
                || matches!(binding.state, KeyState::Pending | KeyState::Expired)
            {
                continue;
            }
            let valid_to = binding.valid_to_ms.map(format_ms).unwrap_or_default();
            let entry = |action: &str| {
                AuditEntry::new(Channel::System, action, key.id.to_string(), Outcome::Notice)
                    .detail("group", binding.group.clone())
                    .detail("aws_key_id", binding.aws_key_id.clone().unwrap_or_default())
                    .detail("valid_to", valid_to.clone())
            };
            match expiry(binding.valid_to_ms, now, warning) {
                Expiry::Expired => {
                    warn!(key = %key.id, group = %binding.group, %valid_to, "key material expired");
                    self.app.audit.append(entry("key.expired"))?;
                    super::steps::update_key(&self.app, &key.id, |b| {
                        // On the record as it is now: a re-import may have moved ValidTo.
                        if !matches!(b.state, KeyState::Pending | KeyState::Expired)
                            && expiry(b.valid_to_ms, now, warning) == Expiry::Expired
                        {
                            b.state = KeyState::Expired;
                        }
                    })?;
                }
                Expiry::Soon if !binding.expiry_warned => {
                    warn!(key = %key.id, group = %binding.group, %valid_to, "key material expires soon");
                    self.app.audit.append(
                        entry("key.expiry-warning").detail("warning", duration::format(warning)),
                    )?;
                    super::steps::update_key(&self.app, &key.id, |b| {
                        b.expiry_warned = true;
                    })?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

struct Plan {
    group: String,
    every: Option<u64>,
    state: ScheduleState,
    due_ms: Option<u64>,
}

/// The scheduler's state as `status` says it: `running`, or `paused: ` and why.
fn state_text(paused: Option<&str>) -> String {
    paused.map_or_else(|| "running".into(), |p| format!("paused: {p}"))
}
