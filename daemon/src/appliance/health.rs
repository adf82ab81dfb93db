//! The HSM health check. The scheduler runs it on every tick. A fault (the token removed,
//! zeroized by a tamper response, or missing a system key) makes the daemon fail closed until a
//! good token is back: sensitive operations are refused, jobs wait before their next step, the
//! scheduler pauses. Each change is audited; when the audit key itself is gone the record cannot
//! be sealed, so the fault goes to the log instead.

use tracing::{error, info, warn};

use super::Appliance;
use crate::domain::audit::{AuditEntry, Channel, Outcome};
use crate::error::{Error, Result};
use crate::store::settings::{AUDIT_KEY, STORAGE_KEY};

impl Appliance {
    /// The HSM fault found by the last health check, if the HSM has not recovered since.
    pub fn hsm_fault(&self) -> Option<String> {
        self.hsm_fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Refuses while the HSM is faulted: the error every sensitive operation returns then.
    pub fn require_hsm(&self) -> Result<()> {
        match self.hsm_fault() {
            None => Ok(()),
            Some(fault) => Err(Error::Hsm(crate::hsm::HsmError::Faulted(format!(
                "{fault}; sensitive operations are refused until a good token is back (no restart needed)"
            )))),
        }
    }

    /// Checks that the token answers and holds the system keys; records a change of state.
    /// Returns the fault, if any.
    pub fn check_hsm(&self) -> Option<String> {
        let _one_at_a_time = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let was = self.hsm_fault();
        if was.is_some() {
            // Look at the token afresh: one that came back is only seen by a new session.
            self.hsm.reset();
        }
        let found = self.probe_hsm().err();
        match (&was, &found) {
            (None, None) => {}
            (None, Some(fault)) => {
                error!(%fault, "HSM fault: failing closed (sensitive operations refused, jobs and the scheduler wait)");
                self.set_fault(found.clone());
                let entry = AuditEntry::new(Channel::System, "hsm.fault", "hsm", Outcome::Failure)
                    .detail("fault", fault.clone());
                let audited = self.audit.append(entry);
                if let Err(e) = &audited {
                    error!(%fault, error = %e, "the HSM fault cannot be recorded in the audit trail (its key is not usable); sensitive operations are refused");
                }
                self.fault_audited
                    .store(audited.is_ok(), std::sync::atomic::Ordering::SeqCst);
            }
            (Some(old), None) => {
                self.set_fault(None);
                info!("HSM healthy again: resuming");
                // The recovery record names the fault: when the audit key was unreachable it is
                // the trail's only record of it.
                let recorded = self.fault_audited.load(std::sync::atomic::Ordering::SeqCst);
                let entry =
                    AuditEntry::new(Channel::System, "hsm.recovered", "hsm", Outcome::Notice)
                        .detail("fault", old.clone())
                        .detail(
                            "fault_recorded",
                            if recorded {
                                "yes (hsm.fault)"
                            } else {
                                "no: the audit key was unreachable"
                            },
                        );
                if let Err(e) = self.audit.append(entry) {
                    warn!(error = %e, "the HSM recovery cannot be recorded in the audit trail");
                }
            }
            (Some(old), Some(fault)) => {
                if old != fault {
                    warn!(%fault, was = %old, "HSM still faulted, differently");
                    self.set_fault(found.clone());
                    // Each new fault is recorded when it can be (say, a token came back with
                    // the audit key but without the storage key).
                    let entry =
                        AuditEntry::new(Channel::System, "hsm.fault", "hsm", Outcome::Failure)
                            .detail("fault", fault.clone())
                            .detail("was", old.clone());
                    // The recovery record says whether the fault it ends was recorded: this
                    // one's.
                    let audited = self.audit.append(entry).is_ok();
                    self.fault_audited
                        .store(audited, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
        found
    }

    fn set_fault(&self, fault: Option<String>) {
        *self
            .hsm_fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fault;
    }

    fn probe_hsm(&self) -> std::result::Result<(), String> {
        self.hsm.token_info().map_err(|e| e.to_string())?;
        for (what, setting) in [("audit", AUDIT_KEY), ("storage", STORAGE_KEY)] {
            let id = match self.store.get_key_setting(setting) {
                Ok(Some(id)) => id,
                Ok(None) => {
                    return Err(format!(
                        "the database does not name the HSM {what} key (was it initialised with 'keywardd init'?)"
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "the HSM {what} key cannot be looked up: the database failed ({e})"
                    ));
                }
            };
            match self.hsm.find_key(&id) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(format!(
                        "the HSM {what} key {id} is not on the token (it was zeroized, reset or replaced)"
                    ));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }
}
