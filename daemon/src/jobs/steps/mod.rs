//! The steps of rotation and synchronisation. Each may run twice (the daemon stopped after it
//! acted but before it was recorded as done), so each looks before it acts.
//!
//! Import parameters and the wrapped material live only in memory: after a restart, the import
//! steps fetch fresh parameters and wrap again (AWS lets the unused token expire).
//!
//! Split by what a step acts on: `hsm_key.rs` (the key in the HSM: generate, wrap),
//! `kms_key.rs` (the KMS key: create or reuse, import, policy, rotate, disable, delete
//! material) and `alias.rs` (the alias and which key of the group is active). This file holds
//! what they share: the run's memory, the step context and the key-record update.

mod alias;
mod hsm_key;
mod kms_key;

use std::collections::BTreeMap;

use super::Jobs;
use crate::cloud::{CloudKms, ErrorKind, ImportParameters, KmsKey};
use crate::domain::groups::Group;
use crate::domain::jobs::{Job, JobKind, Step};
use crate::domain::keys::{
    AwsKeyState, CloudBinding, KeyId, KeyPurpose, KeyRecord, KeySource, KeyState, TAG_KEY_ID,
    TAG_PREFIX,
};
use crate::domain::now_ms;
use crate::error::{Error, Result};

/// What a job run holds that is never written down.
#[derive(Default)]
pub struct Memory {
    cloud: Option<Box<dyn CloudKms>>,
    params: Option<ImportParameters>,
    wrapped: Option<Vec<u8>>,
}

struct Ctx<'a> {
    jobs: &'a Jobs,
    job: &'a mut Job,
    memory: &'a mut Memory,
    group: Group,
}

impl Ctx<'_> {
    /// One audited AWS call (connecting on the first); retries it needed go into the job log.
    fn aws<T>(
        &mut self,
        op: &str,
        on: &str,
        call: impl FnOnce(&dyn CloudKms) -> crate::cloud::CloudResult<T>,
    ) -> Result<T> {
        let by = Jobs::actors(self.job);
        let id = self.job.id;
        if self.memory.cloud.is_none() {
            self.memory.cloud = Some(self.jobs.connect(&self.group, Some(id))?);
        }
        let Some(cloud) = self.memory.cloud.as_deref() else {
            return Err(Error::Internal("no cloud connection".into()));
        };
        let result = self
            .jobs
            .kms
            .call(&by, Some(id), op, on, &self.group, || call(cloud));
        // Retry and pacing lines were shown live while the call ran; now they join the log,
        // with the times they happened.
        for (time, line) in self.jobs.take_live(id) {
            self.job.log(time, line);
        }
        result
    }

    fn log(&mut self, text: impl Into<String>) -> Result<()> {
        self.job.log(now_ms(), text);
        self.jobs.save(self.job)
    }

    fn key_id(&self) -> Result<KeyId> {
        self.job
            .data
            .key
            .ok_or_else(|| Error::Internal(format!("job {} has no key yet", self.job.id)))
    }

    fn aws_key(&self) -> Result<String> {
        self.job
            .data
            .aws_key_id
            .clone()
            .ok_or_else(|| Error::Internal(format!("job {} has no KMS key yet", self.job.id)))
    }

    fn is_sync(&self) -> bool {
        matches!(self.job.kind, JobKind::Sync { .. })
    }
}

/// Runs one step; returns a note for the log.
pub fn run(jobs: &Jobs, job: &mut Job, step: Step, memory: &mut Memory) -> Result<String> {
    let group = jobs.app.get_group(&jobs.job_group(job)?)?;
    let mut ctx = Ctx {
        jobs,
        job,
        memory,
        group,
    };
    match step {
        Step::GenerateKey => hsm_key::generate_key(&mut ctx),
        Step::CreateKey => kms_key::create_key(&mut ctx),
        Step::UseCurrentKey => kms_key::use_current_key(&mut ctx),
        Step::GetImportParameters => kms_key::fetch_parameters(&mut ctx),
        Step::WrapKey => hsm_key::wrap(&mut ctx),
        Step::ImportMaterial => kms_key::import_material(&mut ctx),
        Step::PutPolicy => kms_key::put_policy(&mut ctx),
        Step::MoveAlias => alias::move_alias(&mut ctx),
        Step::RotateOnDemand => kms_key::rotate_on_demand(&mut ctx),
        Step::DisablePrevious => kms_key::disable_previous(&mut ctx),
        Step::MarkActive => alias::mark_active(&mut ctx),
        Step::DeleteMaterial => kms_key::delete_material(&mut ctx),
    }
}

/// Marks a key's binding after a step, and saves it.
pub(super) fn update_key(
    app: &crate::appliance::Appliance,
    id: &KeyId,
    change: impl FnOnce(&mut CloudBinding),
) -> Result<()> {
    let _one_at_a_time = app.lock_records();
    let Some(mut record) = app.store.get_key(id)? else {
        return Err(Error::Internal(format!(
            "key {id} vanished from the database"
        )));
    };
    let mut binding = record.cloud.clone().unwrap_or_default();
    change(&mut binding);
    record.cloud = Some(binding);
    app.store.put_key(&record)?;
    app.store.flush()?;
    Ok(())
}
