//! The job engine: rotations and synchronisations as resumable step machines.
//!
//! A job is stored before it runs. Each step is recorded as started (and flushed) before it
//! acts, and as done (and flushed) after; a restart resumes every unfinished job at the step
//! that did not finish, and that step runs again. Steps look before they act (the KMS key is
//! found by its Keyward tag before one is created; the alias is read before it is moved), so a
//! second run changes nothing that the first already did.
//!
//! Each job runs on its own thread (PKCS#11, sled and the blocking cloud client all block).
//! Every AWS call is audited: an attempt record before it, the outcome after.

mod scheduler;
mod steps;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use keyward_proto::{JobLogView, JobView};
use tracing::{error, info, warn};

use crate::appliance::Appliance;
use crate::cloud::{CloudKms, Connector, RetryLog};
use crate::domain::audit::{Actors, Channel, Outcome};
use crate::domain::groups::Group;
use crate::domain::jobs::{Job, JobKind, JobState, Step};
use crate::domain::{format_ms, now_ms};
use crate::error::{Error, Result};
use crate::kms::Kms;

/// `KEYWARD_JOB_CRASH_AT=before:STEP` or `after:STEP` (step names as in `job show`): the job
/// stops dead there and the test kills the daemon with SIGKILL, as a power cut would. For the
/// crash-recovery tests; unset in production.
pub const CRASH_ENV: &str = "KEYWARD_JOB_CRASH_AT";
/// Logged when the armed fault point is reached; the thread then stops for good.
pub const FAULT_REACHED: &str = "test fault point reached";

/// Longest `job wait`.
const MAX_WAIT: Duration = Duration::from_secs(3600);
const DEFAULT_WAIT: Duration = Duration::from_secs(600);

pub struct Jobs {
    app: Arc<Appliance>,
    kms: Arc<Kms>,
    /// Bumped on every job change; `job wait` sleeps on it.
    generation: Mutex<u64>,
    changed: Condvar,
    /// Jobs with a thread running them.
    running: Mutex<BTreeSet<u64>>,
    /// Serialises submissions (check for a running job of the group, then store the new one).
    submit: Mutex<()>,
    stopping: AtomicBool,
    crash_at: Option<(String, Step)>,
    /// Rotation jobs holding one of the `rotation.concurrency` slots.
    rotating: Mutex<usize>,
    slot_free: Condvar,
    /// What the scheduler last found, for `status`.
    scheduler: Mutex<keyward_proto::SchedulerStatus>,
    /// Log lines of AWS calls still running, by job: `job log` shows them before the call
    /// ends and they are written into the job.
    live: Mutex<BTreeMap<u64, Vec<(u64, String)>>>,
    /// This engine, for callbacks that outlive a borrow (a cloud client's retry log).
    me: std::sync::Weak<Jobs>,
    scheduler_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// A job thread stopped early or could not start: the next pass looks for such jobs.
    orphaned: AtomicBool,
}

/// A rotation slot, given back when dropped.
struct Slot<'a>(&'a Jobs);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut n = self.0.lock_rotating();
        *n = n.saturating_sub(1);
        self.0.slot_free.notify_all();
    }
}

fn crash_point() -> Option<(String, Step)> {
    let text = std::env::var(CRASH_ENV).ok()?;
    let (when, step) = text.split_once(':')?;
    let step = Step::ALL.into_iter().find(|s| s.as_str() == step)?;
    matches!(when, "before" | "after").then(|| (when.to_owned(), step))
}

pub fn view(job: &Job) -> JobView {
    JobView {
        id: job.id,
        kind: job.kind.kind(),
        target: job.target(),
        state: job.state,
        progress: job.progress(),
        step: if job.state.is_done() {
            None
        } else {
            job.current_step().map(|s| s.as_str().to_owned())
        },
        steps: job.steps.iter().map(|s| s.as_str().to_owned()).collect(),
        requested_by: job.requested_by.clone(),
        created: format_ms(job.created_ms),
        updated: format_ms(job.updated_ms),
        finished: job.finished_ms.map(format_ms),
        error: job.error.clone(),
        key: job.data.key.map(|k| k.to_string()),
        aws_key_id: job.data.aws_key_id.clone(),
    }
}

impl Jobs {
    pub fn new(app: Arc<Appliance>, connector: Arc<dyn Connector>) -> Arc<Self> {
        let crash_at = crash_point();
        if let Some((when, step)) = &crash_at {
            warn!(
                when,
                step = step.as_str(),
                "test fault point armed: the daemon will stop dead there"
            );
        }
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            kms: Arc::new(Kms::new(app.clone(), connector)),
            app,
            generation: Mutex::new(0),
            changed: Condvar::new(),
            running: Mutex::new(BTreeSet::new()),
            submit: Mutex::new(()),
            stopping: AtomicBool::new(false),
            crash_at,
            rotating: Mutex::new(0),
            slot_free: Condvar::new(),
            scheduler: Mutex::new(Default::default()),
            live: Mutex::new(BTreeMap::new()),
            scheduler_thread: Mutex::new(None),
            orphaned: AtomicBool::new(false),
        })
    }

    pub fn appliance(&self) -> &Arc<Appliance> {
        &self.app
    }

    /// The audited AWS access jobs use; the admin service uses it for key inspection.
    pub fn kms(&self) -> &Arc<Kms> {
        &self.kms
    }

    /// Starts a thread for every job that has not finished (after a restart).
    pub fn resume_all(self: &Arc<Self>) -> Result<()> {
        for job in self.app.store.list_jobs()? {
            if !job.state.is_done() {
                info!(
                    job = job.id,
                    step = job.current_step().map(Step::as_str),
                    "resuming job"
                );
                self.start(job.id);
            }
        }
        Ok(())
    }

    /// Asks running jobs to stop at their next step boundary, and waits up to `grace` for them.
    pub fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        // The scheduler first: once it has stopped, nothing starts a job or writes a record.
        let scheduler = self
            .scheduler_thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = scheduler
            && thread.join().is_err()
        {
            error!("the scheduler thread panicked");
        }
        let deadline = Instant::now() + grace;
        let mut generation = self.lock_generation();
        while !self.lock_running().is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                warn!(
                    jobs = ?*self.lock_running(),
                    "jobs still inside a step at shutdown; they resume at that step on the next start"
                );
                return;
            }
            generation = self
                .changed
                .wait_timeout(generation, left.min(Duration::from_millis(200)))
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
    }

    fn lock_generation(&self) -> std::sync::MutexGuard<'_, u64> {
        self.generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_rotating(&self) -> std::sync::MutexGuard<'_, usize> {
        self.rotating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for one of the `rotation.concurrency` slots; `None` when the daemon is stopping.
    fn rotation_slot(&self, job: &mut Job) -> Option<Slot<'_>> {
        let limit = self.app.rotation.concurrency;
        let mut n = self.lock_rotating();
        let mut logged = false;
        while *n >= limit {
            if self.stopping.load(Ordering::SeqCst) {
                return None;
            }
            if !logged {
                logged = true;
                let busy = *n;
                drop(n);
                job.log(
                    now_ms(),
                    format!("waiting for a rotation slot ({busy} rotations running; rotation.concurrency = {limit})"),
                );
                if let Err(e) = self.save(job) {
                    warn!(job = job.id, error = %e, "cannot record that the job waits");
                }
                n = self.lock_rotating();
                continue;
            }
            n = self
                .slot_free
                .wait_timeout(n, Duration::from_millis(500))
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        *n += 1;
        Some(Slot(self))
    }

    /// Rotations running now (holding a slot).
    pub fn rotations_running(&self) -> usize {
        *self.lock_rotating()
    }

    /// Waits while the HSM is faulted (the scheduler's health check clears it). Logged once
    /// in the job's log. Returns false when the daemon is stopping.
    fn wait_for_hsm(&self, job: &mut Job) -> bool {
        let Some(fault) = self.app.hsm_fault() else {
            return true;
        };
        job.log(
            now_ms(),
            format!("paused: the HSM is faulted ({fault}); no step runs until it is healthy again"),
        );
        if let Err(e) = self.save(job) {
            warn!(job = job.id, error = %e, "cannot record that the job waits for the HSM");
        }
        while self.app.hsm_fault().is_some() {
            if self.stopping.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        job.log(now_ms(), "the HSM is healthy again: resuming");
        if let Err(e) = self.save(job) {
            warn!(job = job.id, error = %e, "cannot record that the job resumes");
        }
        true
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, BTreeSet<u64>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn notify(&self) {
        *self.lock_generation() += 1;
        self.changed.notify_all();
    }

    fn start(self: &Arc<Self>, id: u64) {
        if !self.lock_running().insert(id) {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("job-{id}"))
            .spawn(move || {
                // Every line the job logs says which job, of what kind, on which group.
                let _span = me.span(id).entered();
                loop {
                    let finished = me.run(id);
                    let mut running = me.lock_running();
                    // A `job retry` may have requeued the job after this thread last read it
                    // (and found the id still running): look again before giving the id up.
                    let requeued = finished
                        && !me.stopping.load(Ordering::SeqCst)
                        && matches!(me.app.store.get_job(id), Ok(Some(j)) if !j.state.is_done());
                    if !requeued {
                        running.remove(&id);
                        if !finished && !me.stopping.load(Ordering::SeqCst) {
                            // Stopped early (its progress could not be recorded): the
                            // scheduler's next pass gives it a thread again.
                            me.orphaned.store(true, Ordering::SeqCst);
                        }
                        break;
                    }
                }
                me.notify();
            });
        if let Err(e) = spawned {
            error!(job = id, error = %e, "cannot start a thread for the job; the scheduler tries again");
            self.lock_running().remove(&id);
            self.orphaned.store(true, Ordering::SeqCst);
        }
    }

    fn span(&self, id: u64) -> tracing::Span {
        match self.app.store.get_job(id) {
            Ok(Some(job)) => {
                let group = self.job_group(&job).unwrap_or_default();
                tracing::info_span!("job", id, kind = job.kind.name(), group = %group)
            }
            _ => tracing::info_span!("job", id),
        }
    }

    /// Saves the job and makes it durable, then wakes waiters.
    fn save(&self, job: &Job) -> Result<()> {
        self.app.store.put_job(job)?;
        self.app.store.flush()?;
        self.notify();
        Ok(())
    }

    fn fault(&self, when: &str, step: Step) {
        if let Some((w, s)) = &self.crash_at
            && w == when
            && *s == step
        {
            // The test that armed this sends SIGKILL when it reads the line; until then
            // nothing more happens here (no flush, no clean stop), as in a power cut.
            error!(
                when,
                step = step.as_str(),
                "{FAULT_REACHED}: waiting to be killed"
            );
            loop {
                std::thread::park();
            }
        }
    }

    fn actors(job: &Job) -> Actors {
        Actors::new(job.requested_by.clone(), Channel::System)
    }

    /// Runs the job until it is done (true) or stops early (false: the daemon is stopping, or
    /// the job cannot record its progress; the scheduler's pass or the next start resumes it).
    fn run(self: &Arc<Self>, id: u64) -> bool {
        let mut memory = steps::Memory::default();
        let mut slot = None;
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return false;
            }
            let mut job = match self.app.store.get_job(id) {
                Ok(Some(job)) => job,
                Ok(None) => return true,
                Err(e) => {
                    error!(job = id, error = %e, "cannot read the job; it resumes later");
                    return false;
                }
            };
            if job.state.is_done() {
                return true;
            }
            if slot.is_none() && matches!(job.kind, JobKind::Rotate { .. }) {
                slot = self.rotation_slot(&mut job);
                if slot.is_none() {
                    return false;
                }
                continue;
            }
            if !self.wait_for_hsm(&mut job) {
                return false;
            }
            if let Err(e) = self.advance(&mut job, &mut memory) {
                if self.app.check_hsm().is_some() {
                    // The HSM failed under the step or its audit record: wait for it, then
                    // run the step again.
                    continue;
                }
                // The database or the audit trail failed: the job cannot record its progress,
                // so it stops here; the scheduler's next pass (or the next start) resumes it.
                error!(job = id, error = %e, "the job cannot record its progress; it stops and resumes later");
                return false;
            }
        }
    }

    /// Starts a thread for every unfinished job that has none (its thread stopped early, or
    /// could not be started). Called on every scheduler pass; reads the jobs only after such a
    /// stop, since it decodes every job.
    fn restart_orphans(self: &Arc<Self>) -> Result<()> {
        if !self.orphaned.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let jobs = self.app.store.list_jobs().inspect_err(|_| {
            self.orphaned.store(true, Ordering::SeqCst);
        })?;
        for job in jobs {
            if !job.state.is_done() && !self.lock_running().contains(&job.id) {
                warn!(job = job.id, "an unfinished job had no thread; resuming it");
                self.start(job.id);
            }
        }
        Ok(())
    }

    /// Runs the job's next step (or finishes it), recording before and after.
    fn advance(&self, job: &mut Job, memory: &mut steps::Memory) -> Result<()> {
        let now = now_ms();
        if job.state == JobState::Queued {
            job.state = JobState::Running;
            job.log(now, format!("{} job started", job.kind.name()));
            self.app.audit.append(
                Self::actors(job)
                    .entry(
                        &format!("job.{}", job.kind.name()),
                        &job.target(),
                        Outcome::Attempt,
                    )
                    .detail("job", job.id.to_string()),
            )?;
            self.save(job)?;
        }
        let Some(step) = job.current_step() else {
            return self.finish(job, None);
        };
        let number = job.next_step + 1;
        let total = job.steps.len();
        job.log(
            now_ms(),
            format!("step {number}/{total} {}: started", step.as_str()),
        );
        self.save(job)?;
        self.fault("before", step);
        let result = steps::run(self, job, step, memory);
        match result {
            Ok(note) => {
                self.fault("after", step);
                job.next_step += 1;
                job.log(
                    now_ms(),
                    format!("step {number}/{total} {}: done; {note}", step.as_str()),
                );
                self.save(job)
            }
            Err(e) => {
                if let Some(fault) = self.app.check_hsm() {
                    job.log(
                        now_ms(),
                        format!(
                            "step {number}/{total} {}: the HSM failed under it ({fault}); the step runs again when the HSM is back",
                            step.as_str()
                        ),
                    );
                    return self.save(job);
                }
                job.log(
                    now_ms(),
                    format!("step {number}/{total} {}: failed: {e}", step.as_str()),
                );
                self.finish(job, Some(e.to_string()))
            }
        }
    }

    fn finish(&self, job: &mut Job, error: Option<String>) -> Result<()> {
        let now = now_ms();
        job.finished_ms = Some(now);
        let action = format!("job.{}", job.kind.name());
        let entry = match &error {
            None => {
                job.state = JobState::Succeeded;
                job.log(now, "job succeeded");
                Self::actors(job).entry(&action, &job.target(), Outcome::Success)
            }
            Some(e) => {
                job.state = JobState::Failed;
                job.error = Some(e.clone());
                job.log(now, format!("job failed: {e}"));
                Self::actors(job)
                    .entry(&action, &job.target(), Outcome::Failure)
                    .detail("error", e.clone())
            }
        };
        self.app
            .audit
            .append(entry.detail("job", job.id.to_string()))?;
        if let JobKind::Rotate { group, .. } = &job.kind {
            let backoff = scheduler::backoff(&self.app.rotation);
            self.app.update_schedule(group, |state| match &error {
                None => state.succeeded(job.id, now),
                Some(e) => state.failed(job.id, e, now, &backoff),
            })?;
        }
        self.save(job)
    }

    /// A cloud client for the group. Its retries are logged, and kept in `sink` for the job's
    /// log when there is one.
    fn connect(&self, group: &Group, job: Option<u64>) -> Result<Box<dyn CloudKms>> {
        let me = self.me.clone();
        let retries: RetryLog = Arc::new(move |line: String| {
            warn!("{line}");
            if let (Some(job), Some(jobs)) = (job, me.upgrade()) {
                jobs.lock_live()
                    .entry(job)
                    .or_default()
                    .push((now_ms(), line));
                jobs.notify();
            }
        });
        self.kms.connect(group, retries)
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Vec<(u64, String)>>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The lines a job's running AWS call has reported so far (retries, waits for quota).
    fn take_live(&self, job: u64) -> Vec<(u64, String)> {
        self.lock_live().remove(&job).unwrap_or_default()
    }

    // ---- requests ----

    fn submit(
        self: &Arc<Self>,
        by: &Actors,
        action: &str,
        target: &str,
        kind: JobKind,
        group: &str,
        prepare: impl FnOnce(&mut Job) -> Result<()>,
    ) -> Result<u64> {
        let _guard = self
            .submit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Error::Invalid(
                "the daemon is stopping; ask again once it is back".into(),
            ));
        }
        if let Some(job) = self.app.unfinished_job(group)? {
            return Err(Error::Invalid(format!(
                "job {} ({}) is already working on group {group}; 'job wait {}' first",
                job.id,
                job.kind.name(),
                job.id
            )));
        }
        let id = self.app.audited(by, action, target, || {
            let id = self.app.store.next_job_id()?;
            let mut job = Job::new(id, kind, by.names.clone(), now_ms());
            prepare(&mut job)?;
            job.log(
                now_ms(),
                format!(
                    "queued by {}; steps: {}",
                    by.names.join(" and "),
                    job.steps
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            self.save(&job)?;
            Ok(id)
        })?;
        self.start(id);
        Ok(id)
    }

    /// `group rotate`: queues a rotation job.
    pub fn rotate(self: &Arc<Self>, by: &Actors, name: &str) -> Result<u64> {
        let group = self.app.get_group(name)?;
        group.check_complete().map_err(Error::Invalid)?;
        self.app.get_credential(&group.credential)?;
        let current = self.app.active_key(name)?;
        let kind = JobKind::Rotate {
            group: name.to_owned(),
            mode: group.rotation_mode,
            has_current: current.is_some(),
        };
        self.submit(by, "group.rotate", name, kind, name, |job| {
            if let Some(key) = current {
                job.data.previous_key = Some(key.id);
                job.data.previous_aws_key_id =
                    key.cloud.and_then(|c| c.aws_key_id().map(str::to_owned));
            }
            Ok(())
        })
    }

    /// `key sync`: queues a synchronisation job.
    pub fn sync(
        self: &Arc<Self>,
        by: &Actors,
        key: &str,
        delete_material: bool,
        update_policy: bool,
        import_material: bool,
    ) -> Result<u64> {
        let record = self.app.customer_key(key)?;
        let binding = record.cloud.clone().unwrap_or_default();
        let Some(primary) = binding.primary().cloned() else {
            return Err(Error::Invalid(format!(
                "key {key} has no KMS key yet (its rotation did not get that far); rotate the group again"
            )));
        };
        if !(delete_material || update_policy || import_material) {
            return Err(Error::Invalid(
                "say what to synchronise: delete-material, update-policy and/or import-material"
                    .into(),
            ));
        }
        let group = self.app.get_group(&binding.group)?;
        if update_policy && group.policy.is_none() {
            return Err(Error::Invalid(format!(
                "group {} has no policy_file; 'group set {} policy_file=FILE' first",
                group.name, group.name
            )));
        }
        if self.app.hsm.find_key(&record.id)?.is_none() {
            return Err(Error::NotFound(format!(
                "key {key} is not on the HSM token; its material cannot be re-imported"
            )));
        }
        let kind = JobKind::Sync {
            key: record.id,
            delete_material,
            update_policy,
            import_material,
        };
        self.submit(by, "key.sync", key, kind, &group.name, |job| {
            job.data.key = Some(record.id);
            job.data.aws_key_id = Some(primary.key_id.clone());
            job.data.aws_arn = primary.arn.clone();
            job.data.valid_to_ms = primary.valid_to_ms;
            Ok(())
        })
    }

    pub fn get(&self, id: u64) -> Result<Job> {
        self.app
            .store
            .get_job(id)?
            .ok_or_else(|| Error::NotFound(format!("no job {id}; 'job list' shows them")))
    }

    pub fn list(&self) -> Result<Vec<JobView>> {
        Ok(self.app.store.list_jobs()?.iter().map(view).collect())
    }

    pub fn log(&self, id: u64, from: usize) -> Result<JobLogView> {
        let job = self.get(id)?;
        // `from` counts every line ever written, dropped ones included.
        let skip = from.saturating_sub(job.log_dropped);
        let live = self.lock_live().get(&id).cloned().unwrap_or_default();
        let stored = job.log.iter().map(|l| (l.time_ms, l.text.as_str()));
        let pending = live.iter().map(|(t, text)| (*t, text.as_str()));
        let all: Vec<(u64, &str)> = stored.chain(pending).collect();
        let lines: Vec<String> = all
            .iter()
            .skip(skip)
            .map(|(t, text)| format!("{} {text}", format_ms(*t)))
            .collect();
        let start = job.log_dropped + skip.min(all.len());
        Ok(JobLogView {
            id,
            state: job.state,
            from: start,
            next: job.log_dropped + all.len(),
            lines,
        })
    }

    /// Waits until the job is done. Ok if it succeeded; `JobFailed` if it failed.
    pub fn wait(&self, id: u64, timeout: Option<Duration>) -> Result<JobView> {
        let timeout = timeout.unwrap_or(DEFAULT_WAIT).min(MAX_WAIT);
        let deadline = Instant::now() + timeout;
        let mut generation = self.lock_generation();
        loop {
            let job = self.get(id)?;
            match job.state {
                JobState::Succeeded => return Ok(view(&job)),
                JobState::Failed => {
                    return Err(Error::JobFailed(format!(
                        "job {id} failed: {}",
                        job.error.as_deref().unwrap_or("no reason recorded")
                    )));
                }
                _ => {}
            }
            // A stop does not wait for a waiter: the runtime cannot end while this runs.
            if self.stopping.load(Ordering::SeqCst) {
                return Err(Error::Invalid(format!(
                    "the daemon is stopping; job {id} is still {} and resumes at its step when it starts again",
                    job.state.as_str()
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Invalid(format!(
                    "job {id} is still {} (step {}) after {}; 'job wait {id}' again or 'job log {id} follow'",
                    job.state.as_str(),
                    job.current_step().map_or("-", Step::as_str),
                    crate::domain::duration::format(timeout)
                )));
            }
            generation = self
                .changed
                .wait_timeout(generation, left.min(Duration::from_millis(500)))
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
    }
}
