//! The steps of rotation and synchronisation. Each may run twice (the daemon stopped after it
//! acted but before it was recorded as done), so each looks before it acts.
//!
//! Import parameters and the wrapped material live only in memory: after a restart, the import
//! steps fetch fresh parameters and wrap again (AWS lets the unused token expire).

use std::collections::BTreeMap;

use super::Jobs;
use crate::cloud::{CloudKms, ErrorKind, ImportParameters, KmsKey};
use crate::domain::groups::Group;
use crate::domain::jobs::{Job, JobKind, Step};
use crate::domain::keys::{
    AwsKeyState, CloudBinding, KeyId, KeyPurpose, KeyRecord, KeyState, TAG_KEY_ID, TAG_PREFIX,
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
            .aws(&by, Some(id), op, on, &self.group, || call(cloud));
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
        Step::GenerateKey => generate_key(&mut ctx),
        Step::CreateKey => create_key(&mut ctx),
        Step::UseCurrentKey => use_current_key(&mut ctx),
        Step::GetImportParameters => fetch_parameters(&mut ctx),
        Step::WrapKey => wrap(&mut ctx),
        Step::ImportMaterial => import_material(&mut ctx),
        Step::PutPolicy => put_policy(&mut ctx),
        Step::MoveAlias => move_alias(&mut ctx),
        Step::RotateOnDemand => rotate_on_demand(&mut ctx),
        Step::DisablePrevious => disable_previous(&mut ctx),
        Step::MarkActive => mark_active(&mut ctx),
        Step::DeleteMaterial => delete_material(&mut ctx),
    }
}

fn generate_key(ctx: &mut Ctx<'_>) -> Result<String> {
    let app = &ctx.jobs.app;
    // The id is chosen and recorded before the key exists, so a second run finds the key.
    let id = match ctx.job.data.key {
        Some(id) => id,
        None => {
            let raw: [u8; 16] = app.hsm.random(16)?.try_into().map_err(|_| {
                Error::Internal("the HSM returned the wrong number of random bytes".into())
            })?;
            ctx.job.data.key = Some(KeyId(raw));
            ctx.jobs.save(ctx.job)?;
            KeyId(raw)
        }
    };
    let label = format!("keyward:customer:{}", ctx.group.name);
    let fingerprint = match app.hsm.find_key(&id)? {
        Some(_) => app.hsm.fingerprint(&id)?,
        None => {
            app.hsm
                .generate_key_with_id(KeyPurpose::Customer, &label, id)?
                .fingerprint
        }
    };
    if app.store.get_key(&id)?.is_none() {
        app.store.put_key(&KeyRecord {
            id,
            label,
            purpose: KeyPurpose::Customer,
            fingerprint: fingerprint.clone(),
            created_ms: now_ms(),
            cloud: Some(CloudBinding {
                group: ctx.group.name.clone(),
                state: KeyState::Pending,
                job: ctx.job.id,
                ..CloudBinding::default()
            }),
        })?;
        app.store.flush()?;
    }
    Ok(format!(
        "AES-256 key {id} (kcv {fingerprint}) is in the HSM"
    ))
}

fn record_aws_key(ctx: &mut Ctx<'_>, key: &KmsKey) -> Result<()> {
    ctx.job.data.aws_key_id = Some(key.key_id.clone());
    ctx.job.data.aws_arn = Some(key.arn.clone());
    let id = ctx.key_id()?;
    update_key(&ctx.jobs.app, &id, |b| {
        b.aws_key_id = Some(key.key_id.clone());
        b.aws_arn = Some(key.arn.clone());
        b.aws_key_state = Some(key.state.clone());
    })
}

fn create_key(ctx: &mut Ctx<'_>) -> Result<String> {
    let id = ctx.key_id()?;
    let tag_value = id.to_string();
    if ctx.job.data.create_key_sent {
        // A key this job made (or adopted) before a restart carries the tag: use it.
        if let Some(found) = ctx.aws(
            "ListResourceTags",
            &format!("tag {TAG_KEY_ID}={tag_value}"),
            |c| c.find_key_by_tag(TAG_KEY_ID, &tag_value),
        )? {
            record_aws_key(ctx, &found)?;
            return Ok(format!(
                "KMS key {} already carries this key's tag (found, not created again)",
                found.key_id
            ));
        }
    } else {
        // Recorded before AWS is called: from here on a tagged key may exist.
        ctx.job.data.create_key_sent = true;
        ctx.jobs.save(ctx.job)?;
    }
    if let Some(active) = ctx.group.active_key_id.clone() {
        let used = ctx.jobs.app.group_keys(&ctx.group.name)?.iter().any(|k| {
            k.cloud.as_ref().is_some_and(|c| {
                c.aws_key_id.as_deref() == Some(active.as_str())
                    || c.aws_arn.as_deref() == Some(active.as_str())
            })
        });
        if !used {
            let key = ctx.aws("DescribeKey", &active, |c| c.describe_key(&active))?;
            if key.origin != "EXTERNAL" {
                return Err(Error::Invalid(format!(
                    "active_key_id {active} has origin {}, not EXTERNAL: it cannot receive imported material. Create it with origin EXTERNAL, or clear active_key_id",
                    key.origin
                )));
            }
            if key.state != AwsKeyState::PendingImport {
                return Err(Error::Invalid(format!(
                    "KMS key {active} (active_key_id of group {}) is not in PendingImport but {}; give a key created with origin EXTERNAL and no material, or clear active_key_id",
                    ctx.group.name, key.state
                )));
            }
            let tags = BTreeMap::from([(TAG_KEY_ID.to_owned(), tag_value.clone())]);
            ctx.aws("TagResource", &key.key_id, |c| {
                c.tag_key(&key.key_id, &tags)
            })?;
            record_aws_key(ctx, &key)?;
            return Ok(format!(
                "using active_key_id {} (PendingImport, origin EXTERNAL)",
                key.key_id
            ));
        }
    }
    let mut tags = ctx.group.tags.clone();
    tags.insert(TAG_KEY_ID.to_owned(), tag_value);
    tags.insert(format!("{TAG_PREFIX}group"), ctx.group.name.clone());
    let description = ctx.group.description.clone();
    let key = ctx.aws("CreateKey", "a new key", |c| {
        c.create_key(&description, &tags)
    })?;
    record_aws_key(ctx, &key)?;
    Ok(format!(
        "created KMS key {} (origin EXTERNAL, {})",
        key.key_id, key.state
    ))
}

fn use_current_key(ctx: &mut Ctx<'_>) -> Result<String> {
    let Some(aws_key) = ctx.job.data.previous_aws_key_id.clone() else {
        return Err(Error::Invalid(format!(
            "group {} has no active key with a KMS key to receive new material; rotate with rotation_mode=new-key first",
            ctx.group.name
        )));
    };
    let key = ctx.aws("DescribeKey", &aws_key, |c| c.describe_key(&aws_key))?;
    record_aws_key(ctx, &key)?;
    Ok(format!(
        "KMS key {} ({}) receives the new material",
        key.key_id, key.state
    ))
}

/// GetParametersForImport with the strongest algorithm both the HSM and AWS accept.
fn fetch_parameters(ctx: &mut Ctx<'_>) -> Result<String> {
    let aws_key = ctx.aws_key()?;
    let algorithms = ctx.jobs.app.hsm.capabilities().wrap_algorithms;
    if algorithms.is_empty() {
        return Err(Error::Invalid(
            "the HSM supports none of the AWS import wrapping algorithms (RSAES_OAEP_SHA_256/SHA_1, RSA_AES_KEY_WRAP_SHA_256/SHA_1)"
                .into(),
        ));
    }
    let mut refused = Vec::new();
    for alg in algorithms {
        match ctx.aws("GetParametersForImport", &aws_key, |c| {
            c.get_parameters_for_import(&aws_key, alg)
        }) {
            Ok(params) => {
                let note = format!(
                    "import parameters for {aws_key} with {alg} (RSA_3072){}",
                    if refused.is_empty() {
                        String::new()
                    } else {
                        format!("; AWS refused {}", refused.join(", "))
                    }
                );
                ctx.memory.params = Some(params);
                ctx.memory.wrapped = None;
                return Ok(note);
            }
            Err(Error::Cloud(e))
                if matches!(e.kind, ErrorKind::Invalid | ErrorKind::Unsupported) =>
            {
                ctx.log(format!(
                    "AWS refused {alg}: {e}; trying the next algorithm the HSM supports"
                ))?;
                refused.push(alg.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Invalid(format!(
        "AWS accepted none of the wrapping algorithms this HSM supports ({})",
        refused.join(", ")
    )))
}

fn wrap(ctx: &mut Ctx<'_>) -> Result<String> {
    if ctx.memory.params.is_none() {
        ctx.log("import parameters are not kept across a restart; fetching new ones")?;
        fetch_parameters(ctx)?;
    }
    let id = ctx.key_id()?;
    let params = ctx
        .memory
        .params
        .as_ref()
        .ok_or_else(|| Error::Internal("no import parameters".into()))?;
    let wrapped = ctx
        .jobs
        .app
        .hsm
        .wrap_key(&id, &params.public_key, params.algorithm)?;
    let note = format!(
        "key {id} wrapped inside the HSM with {} ({} bytes)",
        params.algorithm,
        wrapped.len()
    );
    ctx.memory.wrapped = Some(wrapped);
    Ok(note)
}

fn import_material(ctx: &mut Ctx<'_>) -> Result<String> {
    let aws_key = ctx.aws_key()?;
    let new_material = ctx.job.kind.replaces_material();
    if !ctx.is_sync() && !new_material {
        // A rotation's key is new: if it has material, this job imported it before a restart.
        let key = ctx.aws("DescribeKey", &aws_key, |c| c.describe_key(&aws_key))?;
        if key.state != AwsKeyState::PendingImport {
            return Ok(format!(
                "KMS key {aws_key} is {} already: the material was imported before a restart",
                key.state
            ));
        }
    }
    if ctx.memory.wrapped.is_none() {
        ctx.log("wrapped material is not kept across a restart; wrapping again")?;
        wrap(ctx)?;
    }
    let valid_to_ms = match (ctx.is_sync(), ctx.job.data.valid_to_ms) {
        // A re-import keeps the key's expiry while it is in the future.
        (true, Some(ms)) if ms > now_ms() => Some(ms),
        _ => ctx
            .group
            .valid_for_s
            .map(|s| now_ms().saturating_add(s.saturating_mul(1000))),
    };
    let token = ctx
        .memory
        .params
        .as_ref()
        .map(|p| p.import_token.clone())
        .unwrap_or_default();
    let wrapped = ctx.memory.wrapped.clone().unwrap_or_default();
    ctx.aws("ImportKeyMaterial", &aws_key, |c| {
        c.import_key_material(&aws_key, &token, &wrapped, valid_to_ms, new_material)
    })?;
    ctx.memory.params = None;
    ctx.memory.wrapped = None;
    ctx.job.data.valid_to_ms = valid_to_ms;
    let key = ctx.aws("DescribeKey", &aws_key, |c| c.describe_key(&aws_key))?;
    let id = ctx.key_id()?;
    update_key(&ctx.jobs.app, &id, |b| {
        b.aws_key_state = Some(key.state.clone());
        if b.valid_to_ms != valid_to_ms {
            b.expiry_warned = false;
        }
        b.valid_to_ms = valid_to_ms;
        if b.state == KeyState::Expired {
            // Re-imported with a new expiry: usable again, in the place it had.
            b.state = if b.alias.is_some() {
                KeyState::Active
            } else {
                KeyState::Previous
            };
        }
    })?;
    Ok(format!(
        "material imported into {aws_key}{}; the key is {}",
        if new_material {
            " as NEW_KEY_MATERIAL"
        } else {
            ""
        },
        key.state
    ))
}

fn put_policy(ctx: &mut Ctx<'_>) -> Result<String> {
    let aws_key = ctx.aws_key()?;
    let Some(policy) = ctx.group.policy.clone() else {
        return Ok("the group has no policy_file; the key keeps its policy".into());
    };
    ctx.aws("PutKeyPolicy", &aws_key, |c| {
        c.put_key_policy(&aws_key, &policy)
    })?;
    Ok(format!(
        "policy from {} set on {aws_key}",
        ctx.group.policy_file.as_deref().unwrap_or("the group")
    ))
}

fn move_alias(ctx: &mut Ctx<'_>) -> Result<String> {
    let aws_key = ctx.aws_key()?;
    let alias = ctx.group.alias.clone();
    let target = ctx.aws("ListAliases", &alias, |c| c.alias_target(&alias))?;
    if target.as_deref() == Some(aws_key.as_str()) {
        return Ok(format!("{alias} points at {aws_key} already"));
    }
    // Recorded before the move: after a restart the alias has moved, and this says from where.
    ctx.job.data.alias_was = target.clone();
    ctx.jobs.save(ctx.job)?;
    let op = if target.is_some() {
        "UpdateAlias"
    } else {
        "CreateAlias"
    };
    ctx.aws(op, &alias, |c| {
        c.set_alias(&alias, &aws_key, target.is_some())
    })?;
    Ok(match target {
        Some(old) => format!("{alias} moved from {old} to {aws_key}"),
        None => format!("{alias} created, pointing at {aws_key}"),
    })
}

fn rotate_on_demand(ctx: &mut Ctx<'_>) -> Result<String> {
    let aws_key = ctx.aws_key()?;
    ctx.aws("RotateKeyOnDemand", &aws_key, |c| {
        c.rotate_key_on_demand(&aws_key)
    })?;
    Ok(format!(
        "KMS key {aws_key} rotated on demand to the new material; key id and alias unchanged"
    ))
}

fn disable_previous(ctx: &mut Ctx<'_>) -> Result<String> {
    let aws_key = ctx.aws_key()?;
    if !ctx.group.disable_previous {
        return Ok("disable_previous is off; the previous key stays enabled".into());
    }
    let previous = ctx
        .job
        .data
        .previous_aws_key_id
        .clone()
        .or_else(|| ctx.job.data.alias_was.clone());
    let Some(previous) = previous.filter(|p| *p != aws_key) else {
        return Ok("there is no previous key to disable".into());
    };
    let key = ctx.aws("DescribeKey", &previous, |c| c.describe_key(&previous))?;
    if key.state == AwsKeyState::Disabled {
        return Ok(format!("previous KMS key {previous} is disabled already"));
    }
    ctx.aws("DisableKey", &previous, |c| c.disable_key(&previous))?;
    Ok(format!("previous KMS key {previous} disabled"))
}

fn mark_active(ctx: &mut Ctx<'_>) -> Result<String> {
    let app = ctx.jobs.app.clone();
    let id = ctx.key_id()?;
    let alias = ctx.group.alias.clone();
    // new-material keeps the KMS key: the old material is replaced, not disabled.
    let disables = ctx.group.disable_previous && !ctx.job.kind.replaces_material();
    for other in app.group_keys(&ctx.group.name)? {
        if other.id == id {
            continue;
        }
        if other
            .cloud
            .as_ref()
            .is_some_and(|c| c.state == KeyState::Expired && c.alias.is_some())
        {
            update_key(&app, &other.id, |b| b.alias = None)?;
        }
        if other
            .cloud
            .as_ref()
            .is_some_and(|c| c.state == KeyState::Active)
        {
            update_key(&app, &other.id, |b| {
                b.alias = None;
                if disables {
                    b.state = KeyState::Disabled;
                    b.aws_key_state = Some(AwsKeyState::Disabled);
                } else {
                    b.state = KeyState::Previous;
                }
            })?;
        }
    }
    update_key(&app, &id, |b| {
        b.state = KeyState::Active;
        b.alias = Some(alias.clone());
    })?;
    Ok(format!(
        "key {id} is the active key of group {}",
        ctx.group.name
    ))
}

fn delete_material(ctx: &mut Ctx<'_>) -> Result<String> {
    let aws_key = ctx.aws_key()?;
    let key = ctx.aws("DescribeKey", &aws_key, |c| c.describe_key(&aws_key))?;
    if key.state == AwsKeyState::PendingImport {
        return Ok(format!(
            "KMS key {aws_key} has no material already (PendingImport)"
        ));
    }
    ctx.aws("DeleteImportedKeyMaterial", &aws_key, |c| {
        c.delete_imported_key_material(&aws_key)
    })?;
    let after = ctx.aws("DescribeKey", &aws_key, |c| c.describe_key(&aws_key))?;
    let id = ctx.key_id()?;
    update_key(&ctx.jobs.app, &id, |b| {
        b.aws_key_state = Some(after.state.clone());
    })?;
    Ok(format!(
        "material deleted from {aws_key}; the key is {} (the HSM still holds it)",
        after.state
    ))
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
