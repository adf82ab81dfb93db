//! Steps on the KMS key: find or create it (by its Keyward tag), or reuse the group's; import
//! parameters and material; the policy; rotate on demand; disable the previous key; delete
//! material.

use super::*;

pub(super) fn record_aws_key(ctx: &mut Ctx<'_>, key: &KmsKey) -> Result<()> {
    ctx.job.data.aws_key_id = Some(key.key_id.clone());
    ctx.job.data.aws_arn = Some(key.arn.clone());
    let id = ctx.key_id()?;
    let region = ctx.group.region.clone();
    update_key(&ctx.jobs.app, &id, |b| {
        let aws = b.bind_primary(&region, &key.key_id);
        aws.arn = Some(key.arn.clone());
        aws.state = Some(key.state.clone());
    })
}

pub(super) fn create_key(ctx: &mut Ctx<'_>) -> Result<String> {
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
        let used = ctx
            .jobs
            .app
            .group_keys(&ctx.group.name)?
            .iter()
            .any(|k| k.cloud.as_ref().is_some_and(|c| c.is_aws_key(&active)));
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

pub(super) fn use_current_key(ctx: &mut Ctx<'_>) -> Result<String> {
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
pub(super) fn fetch_parameters(ctx: &mut Ctx<'_>) -> Result<String> {
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

pub(super) fn import_material(ctx: &mut Ctx<'_>) -> Result<String> {
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
        super::hsm_key::wrap(ctx)?;
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
        if b.valid_to_ms() != valid_to_ms {
            b.expiry_warned = false;
        }
        b.on_primary(|aws| {
            aws.state = Some(key.state.clone());
            aws.valid_to_ms = valid_to_ms;
        });
        if b.state == KeyState::Expired {
            // Re-imported with a new expiry: usable again, in the place it had.
            b.state = if b.alias().is_some() {
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

pub(super) fn put_policy(ctx: &mut Ctx<'_>) -> Result<String> {
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

pub(super) fn rotate_on_demand(ctx: &mut Ctx<'_>) -> Result<String> {
    let aws_key = ctx.aws_key()?;
    ctx.aws("RotateKeyOnDemand", &aws_key, |c| {
        c.rotate_key_on_demand(&aws_key)
    })?;
    Ok(format!(
        "KMS key {aws_key} rotated on demand to the new material; key id and alias unchanged"
    ))
}

pub(super) fn disable_previous(ctx: &mut Ctx<'_>) -> Result<String> {
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

pub(super) fn delete_material(ctx: &mut Ctx<'_>) -> Result<String> {
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
        b.on_primary(|aws| aws.state = Some(after.state.clone()));
    })?;
    Ok(format!(
        "material deleted from {aws_key}; the key is {} (the HSM still holds it)",
        after.state
    ))
}
