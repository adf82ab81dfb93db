//! Steps on the key in the HSM: generate it (by the id recorded before), wrap it for AWS.

use super::*;

pub(super) fn generate_key(ctx: &mut Ctx<'_>) -> Result<String> {
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
            source: KeySource::Hsm,
            tokens: vec![app.token_label().to_owned()],
        })?;
        app.store.flush()?;
    }
    Ok(format!(
        "AES-256 key {id} (kcv {fingerprint}) is in the HSM"
    ))
}

pub(super) fn wrap(ctx: &mut Ctx<'_>) -> Result<String> {
    if ctx.memory.params.is_none() {
        ctx.log("import parameters are not kept across a restart; fetching new ones")?;
        super::kms_key::fetch_parameters(ctx)?;
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
