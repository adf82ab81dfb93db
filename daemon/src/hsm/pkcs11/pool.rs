//! The session pool, the handle cache and the one recovery path.
//!
//! A context is one C_Initialize of the module: the token's slot, idle logged-in sessions, and
//! the handles of the keys found so far. A fatal session error evicts that session; a device
//! error drops the whole context (its sessions and its handles with it), and the next call
//! builds a new one: C_Finalize, C_Initialize, find the token by label, log in.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::Error as P11Error;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use tracing::{info, warn};

use super::Pkcs11Hsm;
use super::error::{Damage, damage_of, p11, rv};
use crate::domain::keys::KeyId;
use crate::hsm::{Ckr, HsmError, HsmResult};

pub(super) struct Context {
    pkcs11: Pkcs11,
    pub(super) slot: Slot,
    idle: Mutex<Vec<Session>>,
    handles: Mutex<HandleCache>,
}

impl Context {
    pub(super) fn pkcs11(&self) -> &Pkcs11 {
        &self.pkcs11
    }

    /// Closes its sessions, forgets its handles and finalizes the module.
    fn retire(&self) {
        lock(&self.idle).clear();
        lock(&self.handles).handles.clear();
        let _ = self.pkcs11.clone().finalize();
    }
}

/// Secret-key handles by key id (CKA_ID), valid for the life of the context that found them.
/// Only this appliance changes its token, so a handle goes stale only when a key is destroyed
/// (the entry goes with it) or the token is replaced (the context goes, see [`Pkcs11Hsm::reset`]).
/// A handle that is stale anyway is evicted on use and the key is searched once more.
#[derive(Default)]
struct HandleCache {
    handles: HashMap<KeyId, ObjectHandle>,
    /// Counts destroys, so a search that raced one does not cache a handle it just lost.
    destroys: u64,
}

/// A permit to run one PKCS#11 call; returned on drop.
struct Permit<'a>(&'a Pkcs11Hsm);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *lock(&self.0.in_flight) -= 1;
        // All: a `reset` waiting for no call in flight must wake too.
        self.0.slot_free.notify_all();
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One call's session, and the context's handle cache.
pub(super) struct Call<'a> {
    pub(super) session: &'a Session,
    ctx: &'a Context,
    hsm: &'a Pkcs11Hsm,
}

impl Call<'_> {
    /// C_FindObjects with `template`, counted in [`Pkcs11Hsm::object_searches`].
    pub(super) fn search(&self, template: &[Attribute]) -> HsmResult<Vec<ObjectHandle>> {
        self.hsm.searches.fetch_add(1, Ordering::Relaxed);
        self.session
            .find_objects(template)
            .map_err(p11("C_FindObjects"))
    }

    /// Searches the token for the secret key `id` (never the cache), and caches what it finds.
    pub(super) fn find_secret(&self, id: &KeyId) -> HsmResult<Option<ObjectHandle>> {
        let destroys = self.cache_epoch();
        let found = self.search(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Id(id.as_bytes().to_vec()),
        ])?;
        let handle = match found.as_slice() {
            [] => None,
            [one] => Some(*one),
            _ => {
                return Err(HsmError::Operation {
                    op: "find key",
                    reason: format!("{} objects share key id {id}", found.len()),
                });
            }
        };
        let mut cache = lock(&self.ctx.handles);
        match handle {
            Some(h) if cache.destroys == destroys => {
                cache.handles.insert(*id, h);
            }
            Some(_) => {}
            None => {
                cache.handles.remove(id);
            }
        }
        Ok(handle)
    }

    /// The handle of the secret key `id`, and whether it came from the cache.
    fn secret(&self, id: &KeyId) -> HsmResult<(ObjectHandle, bool)> {
        if let Some(h) = lock(&self.ctx.handles).handles.get(id) {
            return Ok((*h, true));
        }
        let h = self
            .find_secret(id)?
            .ok_or(HsmError::KeyNotFound { id: *id })?;
        Ok((h, false))
    }

    /// A key this call made: the next operation on it needs no search.
    pub(super) fn remember(&self, id: &KeyId, handle: ObjectHandle) {
        lock(&self.ctx.handles).handles.insert(*id, handle);
    }

    /// Where the cache stands before a search, for [`Call::remember_listed`].
    pub(super) fn cache_epoch(&self) -> u64 {
        lock(&self.ctx.handles).destroys
    }

    /// Caches what a listing found (`None`: an id two objects share, which is evicted), unless
    /// a key was destroyed since `epoch`: the listing may hold a handle that is gone.
    pub(super) fn remember_listed(&self, epoch: u64, found: &HashMap<KeyId, Option<ObjectHandle>>) {
        let mut cache = lock(&self.ctx.handles);
        if cache.destroys != epoch {
            return;
        }
        for (id, handle) in found {
            match handle {
                Some(h) => cache.handles.insert(*id, *h),
                None => cache.handles.remove(id),
            };
        }
    }

    /// A key this call destroyed.
    pub(super) fn forget(&self, id: &KeyId) {
        let mut cache = lock(&self.ctx.handles);
        cache.handles.remove(id);
        cache.destroys += 1;
    }

    /// Drops `id`'s entry if it still holds `stale`.
    fn evict(&self, id: &KeyId, stale: ObjectHandle) {
        let mut cache = lock(&self.ctx.handles);
        if cache.handles.get(id) == Some(&stale) {
            cache.handles.remove(id);
        }
    }
}

/// The token no longer knows this handle: the cached entry was stale.
fn is_stale_handle(e: &HsmError) -> bool {
    matches!(
        e.ckr(),
        Some(Ckr::OBJECT_HANDLE_INVALID | Ckr::KEY_HANDLE_INVALID)
    )
}

impl Pkcs11Hsm {
    pub(super) fn build_context(&self) -> HsmResult<Context> {
        let module = self.settings.module.display().to_string();
        let pkcs11 = Pkcs11::new(&self.settings.module).map_err(|e| HsmError::Module {
            module: module.clone(),
            reason: e.to_string(),
        })?;
        if let Err(e) = pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            match rv(&e) {
                Some(Ckr::CRYPTOKI_ALREADY_INITIALIZED) => {}
                // The library loaded; it could not start.
                Some(ckr) => return Err(HsmError::Initialize { module, ckr }),
                None => {
                    return Err(HsmError::Module {
                        module,
                        reason: e.to_string(),
                    });
                }
            }
        }
        let label = &self.settings.token_label;
        let slots = pkcs11
            .get_slots_with_initialized_token()
            .map_err(p11("C_GetSlotList"))?;
        let mut found = None;
        for slot in slots {
            let info = pkcs11.get_token_info(slot).map_err(p11("C_GetTokenInfo"))?;
            if info.label().trim_end() == label {
                if found.is_some() {
                    return Err(HsmError::Operation {
                        op: "find token",
                        reason: format!("two tokens are labelled '{label}'; relabel one"),
                    });
                }
                found = Some(slot);
            }
        }
        let slot = found.ok_or_else(|| HsmError::TokenNotFound {
            label: label.clone(),
        })?;
        Ok(Context {
            pkcs11,
            slot,
            idle: Mutex::new(Vec::new()),
            handles: Mutex::new(HandleCache::default()),
        })
    }

    /// The live context, rebuilding it after a device error.
    pub(super) fn context(&self) -> HsmResult<Arc<Context>> {
        if let Some(ctx) = self
            .context
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            return Ok(ctx.clone());
        }
        let mut slot = self
            .context
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ctx) = slot.as_ref() {
            return Ok(ctx.clone());
        }
        match self.build_context() {
            Ok(ctx) => {
                let ctx = Arc::new(ctx);
                // Log in once to prove the PIN before anyone relies on the context.
                let session = self.open_session(&ctx)?;
                lock(&ctx.idle).push(session);
                *slot = Some(ctx.clone());
                if lock(&self.fault).take().is_some() {
                    info!(token = %self.settings.token_label, "HSM recovered");
                }
                Ok(ctx)
            }
            Err(e) => {
                *lock(&self.fault) = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn open_session(&self, ctx: &Context) -> HsmResult<Session> {
        let session = ctx
            .pkcs11
            .open_rw_session(ctx.slot)
            .map_err(p11("C_OpenSession"))?;
        match session.login(UserType::User, Some(&self.settings.pin)) {
            Ok(()) => Ok(session),
            Err(e) => match rv(&e) {
                Some(Ckr::USER_ALREADY_LOGGED_IN) => Ok(session),
                Some(
                    ckr @ (Ckr::PIN_INCORRECT
                    | Ckr::PIN_LOCKED
                    | Ckr::PIN_EXPIRED
                    | Ckr::PIN_INVALID
                    | Ckr::PIN_LEN_RANGE),
                ) => Err(HsmError::Login { ckr }),
                _ => Err(p11("C_Login")(e)),
            },
        }
    }

    /// Drops the context after a device error; the next call rebuilds it.
    pub(super) fn invalidate(&self, failed: &Arc<Context>, reason: &str) {
        let mut slot = self
            .context
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
            warn!(token = %self.settings.token_label, %reason, "HSM device error: dropping the PKCS#11 context");
            *slot = None;
            *lock(&self.fault) = Some(reason.to_owned());
            // Finalize so the next C_Initialize rescans slots; other holders see
            // CKR_CRYPTOKI_NOT_INITIALIZED, which routes them here too.
            failed.retire();
        }
    }

    fn permit(&self) -> Permit<'_> {
        let mut n = lock(&self.in_flight);
        while *n >= self.settings.sessions.max(1) {
            n = self
                .slot_free
                .wait(n)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *n += 1;
        Permit(self)
    }

    /// Runs `f` on the live context, outside any session (token information).
    pub(super) fn with_context<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Context) -> Result<T, P11Error>,
    ) -> HsmResult<T> {
        let _permit = self.permit();
        let ctx = self.context()?;
        f(&ctx).map_err(|e| {
            let err = p11(op)(e);
            if err.is_device_fault() {
                self.invalidate(&ctx, &err.to_string());
            }
            err
        })
    }

    /// Runs `f` on a pooled, logged-in session. Sessions are only closed when they are broken:
    /// closing the last one would log the token out (and races in some tokens).
    pub(super) fn with_session<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Call<'_>) -> HsmResult<T>,
    ) -> HsmResult<T> {
        let _permit = self.permit();
        let ctx = self.context()?;
        let pooled = lock(&ctx.idle).pop();
        let session = match pooled {
            Some(s) => s,
            None => match self.open_session(&ctx) {
                Ok(s) => s,
                Err(e) => {
                    if e.is_device_fault() {
                        self.invalidate(&ctx, &e.to_string());
                    }
                    return Err(e);
                }
            },
        };
        let result = f(&Call {
            session: &session,
            ctx: &ctx,
            hsm: self,
        });
        match result.as_ref().map_err(damage_of) {
            Err(Damage::Device) => {
                let reason = result
                    .as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                drop(session);
                self.invalidate(&ctx, &reason);
            }
            Err(Damage::Session) => warn!(op, "PKCS#11 session lost; evicting it from the pool"),
            Ok(_) | Err(Damage::None) => lock(&ctx.idle).push(session),
        }
        result
    }

    /// Runs `f` on the secret key `id`, its handle from the cache when there is one. A cached
    /// handle the token no longer knows is evicted, and `f` runs once more on a fresh search.
    pub(super) fn with_key<T>(
        &self,
        op: &'static str,
        id: &KeyId,
        f: impl Fn(&Call<'_>, ObjectHandle) -> HsmResult<T>,
    ) -> HsmResult<T> {
        self.with_session(op, |call| {
            let (handle, cached) = call.secret(id)?;
            match f(call, handle) {
                Err(e) if cached && is_stale_handle(&e) => {
                    warn!(op, key = %id, "cached HSM object handle is stale; searching again");
                    call.evict(id, handle);
                    let fresh = call
                        .find_secret(id)?
                        .ok_or(HsmError::KeyNotFound { id: *id })?;
                    f(call, fresh)
                }
                result => result,
            }
        })
    }

    /// Drops every session, every cached handle and the module's view of the token.
    pub(super) fn drop_context(&self) {
        // C_Finalize must not run while another call is inside the module: wait until no call
        // is in flight, and hold the count's lock so that none starts until the context is gone.
        let mut in_flight = lock(&self.in_flight);
        while *in_flight > 0 {
            in_flight = self
                .slot_free
                .wait(in_flight)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let mut slot = self
            .context
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ctx) = slot.take() {
            ctx.retire();
        }
        drop(slot);
        drop(in_flight);
    }

    /// The live context's handle cache, if there is a live context.
    fn live_handles<R>(&self, f: impl FnOnce(&mut HandleCache) -> R) -> Option<R> {
        let slot = self
            .context
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.as_ref().map(|ctx| f(&mut lock(&ctx.handles)))
    }

    /// How many object searches (C_FindObjects) this HSM has run since it was opened: a
    /// diagnostic, to see that a repeated operation on a key finds its handle in the cache.
    pub fn object_searches(&self) -> u64 {
        self.searches.load(Ordering::Relaxed)
    }

    /// Whether the handle of key `id` is cached (a diagnostic).
    pub fn caches_handle(&self, id: &KeyId) -> bool {
        self.live_handles(|cache| cache.handles.contains_key(id))
            .unwrap_or(false)
    }

    /// Forgets every cached handle but keeps the sessions, so the next operation on each key
    /// searches again: the uncached side of the handle-cache benchmark.
    pub fn forget_handles(&self) {
        self.live_handles(|cache| cache.handles.clear());
    }
}
