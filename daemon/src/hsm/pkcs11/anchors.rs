//! Small private data objects Keyward keeps in the token (the audit head), found by label, and
//! the empty ones an interrupted write leaves.
//!
//! Their handles are not cached: a write replaces the object, an interrupted write leaves two,
//! and the audit check must see what the token holds now.

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};

use super::Pkcs11Hsm;
use super::error::p11;
use super::keys::attribute;
use super::pool::Call;
use crate::hsm::{HsmError, HsmResult};

/// Marks the token objects Keyward owns (CKA_APPLICATION of data objects).
const APPLICATION: &[u8] = b"keyward";

fn find(call: &Call<'_>, name: &str) -> HsmResult<Vec<ObjectHandle>> {
    call.search(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Application(APPLICATION.to_vec()),
        Attribute::Label(name.as_bytes().to_vec()),
    ])
}

pub(super) fn read(hsm: &Pkcs11Hsm, name: &str) -> HsmResult<Vec<Vec<u8>>> {
    hsm.with_session("read anchor", |call| {
        let mut values = Vec::new();
        for handle in find(call, name)? {
            values.extend(attribute(
                call.session,
                handle,
                AttributeType::Value,
                |a| match a {
                    Attribute::Value(v) => Some(v),
                    _ => None,
                },
            )?);
        }
        Ok(values)
    })
}

pub(super) fn write(hsm: &Pkcs11Hsm, name: &str, value: &[u8]) -> HsmResult<()> {
    // Tokens may make CKA_VALUE of data objects read-only (SoftHSM does): create the new
    // value first, then destroy the old ones, so a crash in between leaves both, never none.
    hsm.with_session("write anchor", |call| {
        let old = find(call, name)?;
        call.session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Application(APPLICATION.to_vec()),
                Attribute::Label(name.as_bytes().to_vec()),
                Attribute::Value(value.to_vec()),
            ])
            .map_err(p11("C_CreateObject(anchor)"))?;
        destroy_all(call, old, "C_DestroyObject(old anchor)")
    })
}

pub(super) fn remove(hsm: &Pkcs11Hsm, name: &str) -> HsmResult<()> {
    hsm.with_session("remove anchor", |call| {
        let found = find(call, name)?;
        destroy_all(call, found, "C_DestroyObject(anchor)")
    })
}

fn destroy_all(call: &Call<'_>, handles: Vec<ObjectHandle>, op: &'static str) -> HsmResult<()> {
    for handle in handles {
        call.session.destroy_object(handle).map_err(p11(op))?;
    }
    Ok(())
}

/// Data objects that hold nothing. A kill inside C_CreateObject leaves one on SoftHSM, which
/// stores the object (class and defaults) before it writes the template. An object whose
/// attributes cannot be read is not called empty: it is left alone.
fn find_torn(call: &Call<'_>) -> HsmResult<Vec<ObjectHandle>> {
    let mut torn = Vec::new();
    for handle in call.search(&[Attribute::Class(ObjectClass::DATA)])? {
        let read = call.session.get_attributes(
            handle,
            &[
                AttributeType::Label,
                AttributeType::Application,
                AttributeType::ObjectId,
                AttributeType::Value,
            ],
        );
        let empty = match read.map_err(p11("C_GetAttributeValue(data object)")) {
            Ok(attrs) => attrs.iter().all(|a| match a {
                Attribute::Label(v)
                | Attribute::Application(v)
                | Attribute::ObjectId(v)
                | Attribute::Value(v) => v.is_empty(),
                _ => false,
            }),
            Err(HsmError::Pkcs11 { .. }) => false,
            Err(e) => return Err(e),
        };
        if empty {
            torn.push(handle);
        }
    }
    Ok(torn)
}

fn describe(handle: ObjectHandle) -> String {
    format!(
        "data object {} (no label, application, object id or value)",
        handle.handle()
    )
}

pub(super) fn torn(hsm: &Pkcs11Hsm) -> HsmResult<Vec<String>> {
    hsm.with_session("find torn objects", |call| {
        Ok(find_torn(call)?.into_iter().map(describe).collect())
    })
}

pub(super) fn remove_torn(hsm: &Pkcs11Hsm) -> HsmResult<usize> {
    hsm.with_session("remove torn objects", |call| {
        let found = find_torn(call)?;
        let count = found.len();
        destroy_all(call, found, "C_DestroyObject(torn object)")?;
        Ok(count)
    })
}
