//! Steps on the alias and the group's key states: move the alias, mark the new key active.

use super::*;

pub(super) fn move_alias(ctx: &mut Ctx<'_>) -> Result<String> {
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

pub(super) fn mark_active(ctx: &mut Ctx<'_>) -> Result<String> {
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
            .is_some_and(|c| c.state == KeyState::Expired && c.alias().is_some())
        {
            update_key(&app, &other.id, |b| b.on_primary(|aws| aws.alias = None))?;
        }
        if other
            .cloud
            .as_ref()
            .is_some_and(|c| c.state == KeyState::Active)
        {
            update_key(&app, &other.id, |b| {
                b.on_primary(|aws| {
                    aws.alias = None;
                    if disables {
                        aws.state = Some(AwsKeyState::Disabled);
                    }
                });
                if disables {
                    b.state = KeyState::Disabled;
                } else {
                    b.state = KeyState::Previous;
                }
            })?;
        }
    }
    update_key(&app, &id, |b| {
        b.state = KeyState::Active;
        b.on_primary(|aws| aws.alias = Some(alias.clone()));
    })?;
    Ok(format!(
        "key {id} is the active key of group {}",
        ctx.group.name
    ))
}
