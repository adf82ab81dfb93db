//! The daemon hardens its own process at start, and reports each measure in `status`:
//! inherited descriptors closed, umask 077, no core dumps and not dumpable, no new privileges,
//! memory locked, and (started as root with `user` set) a drop to that user after opening what
//! needs privilege.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::Path;

use nix::sys::mman::{MlockAllFlags, mlockall, munlockall};
use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Uid, User, geteuid, initgroups, setgid, setuid};
use tracing::{info, warn};

use crate::error::{Error, Result};

/// What was done, measure by measure, for `status` (`ok`, or what went wrong).
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub measures: BTreeMap<String, String>,
}

impl Report {
    fn set(&mut self, measure: &str, state: impl Into<String>) {
        self.measures.insert(measure.to_owned(), state.into());
    }
}

/// Closes every descriptor beyond stdin, stdout and stderr that the process inherited. Run it
/// first thing in `main`, before anything of ours is open.
pub fn close_inherited_fds() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    let mut closed = 0;
    for fd in fds {
        #[allow(
            unsafe_code,
            reason = "closing inherited descriptors by number has no safe API"
        )]
        // SAFETY: called before this process opens anything of its own (besides the directory
        // listing above, now closed), so no Rust object owns these descriptors; a descriptor that
        // is already gone yields EBADF, which is ignored.
        let result = unsafe { nix::libc::close(fd) };
        if result == 0 {
            closed += 1;
        }
    }
    closed
}

/// The measures that need no configuration. Run before the config is read.
pub fn early(inherited_fds_closed: usize) -> Report {
    let mut report = Report::default();
    report.set(
        "inherited_fds",
        format!("ok: {inherited_fds_closed} closed"),
    );
    umask(Mode::from_bits_truncate(0o077));
    report.set("umask", "ok: 077");
    match setrlimit(Resource::RLIMIT_CORE, 0, 0) {
        Ok(()) => report.set("core_dumps", "ok: RLIMIT_CORE 0"),
        Err(e) => report.set("core_dumps", format!("failed: {e}")),
    }
    match nix::sys::prctl::set_dumpable(false) {
        Ok(()) => report.set("dumpable", "ok: off"),
        Err(e) => report.set("dumpable", format!("failed: {e}")),
    }
    match nix::sys::prctl::set_no_new_privs() {
        Ok(()) => report.set("no_new_privs", "ok: on"),
        Err(e) => report.set("no_new_privs", format!("failed: {e}")),
    }
    // As root, lift the lock limit first, so the process can still allocate after dropping to
    // an unprivileged user (MCL_FUTURE applies the limit to every new mapping).
    if geteuid().is_root() {
        let _ = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY);
    }
    match mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        Ok(()) => report.set("mlockall", "ok: current and future"),
        Err(e) => {
            warn!(error = %e, "mlockall refused (raise LimitMEMLOCK); secrets may be swapped out");
            report.set(
                "mlockall",
                format!("degraded: {e}; raise the memlock limit (LimitMEMLOCK=infinity)"),
            );
        }
    }
    report
}

/// Gives `paths` (recursively) to the user, so the daemon can still write there after the drop.
/// Never follows a symlink: a link planted in the data directory must not hand its target
/// (say /etc/shadow) to the daemon's user at the next start.
fn chown_tree(path: &Path, uid: Uid, gid: Gid) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid.as_raw()), Some(gid.as_raw()))
        .map_err(|e| Error::Invalid(format!("chown {}: {e}", path.display())))?;
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    if meta.is_dir() && !meta.file_type().is_symlink() {
        for entry in std::fs::read_dir(path)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?
        {
            let entry = entry.map_err(|e| Error::Invalid(e.to_string()))?;
            chown_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Drops from root to `name` (and its groups), after giving it `owned` paths. Afterwards the
/// process has no capability and cannot regain root.
pub fn drop_privileges(name: &str, owned: &[&Path], report: &mut Report) -> Result<Uid> {
    if !geteuid().is_root() {
        let me = geteuid();
        report.set("user", format!("ok: not root (uid {me}); nothing to drop"));
        return Ok(me);
    }
    let user = User::from_name(name)
        .map_err(|e| Error::Invalid(format!("user = {name:?}: {e}")))?
        .ok_or_else(|| Error::Invalid(format!("user = {name:?}: no such user; create it (useradd --system {name}) or change the config")))?;
    if user.uid.is_root() {
        return Err(Error::Invalid(format!(
            "user = {name:?} is root; name an unprivileged user"
        )));
    }
    for path in owned {
        chown_tree(path, user.uid, user.gid)?;
    }
    // Root locks without limit; the user will not. With a finite memlock limit, MCL_FUTURE would
    // charge every new mapping (thread stacks, heap growth) to it and allocations would fail:
    // keep what is locked now, lock nothing new, and say so.
    let (soft, _) = getrlimit(Resource::RLIMIT_MEMLOCK).unwrap_or((0, 0));
    if soft != RLIM_INFINITY
        && report
            .measures
            .get("mlockall")
            .is_some_and(|m| m.starts_with("ok"))
    {
        let _ = munlockall();
        let state = match mlockall(MlockAllFlags::MCL_CURRENT) {
            Ok(()) => format!(
                "degraded: memory at start is locked, later allocations are not: the memlock limit is {} KiB; set LimitMEMLOCK=infinity",
                soft / 1024
            ),
            Err(e) => format!("degraded: {e}; set LimitMEMLOCK=infinity"),
        };
        warn!(%state, "memory locking reduced before dropping privileges");
        report.set("mlockall", state);
    }
    let cname =
        CString::new(name).map_err(|_| Error::Invalid(format!("user = {name:?}: contains NUL")))?;
    initgroups(&cname, user.gid).map_err(|e| Error::Invalid(format!("initgroups {name}: {e}")))?;
    setgid(user.gid).map_err(|e| Error::Invalid(format!("setgid {}: {e}", user.gid)))?;
    setuid(user.uid).map_err(|e| Error::Invalid(format!("setuid {}: {e}", user.uid)))?;
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err(Error::Internal(
            "after dropping privileges the process could become root again; refusing to run".into(),
        ));
    }
    // A uid change resets the dumpable flag: set it again.
    let _ = nix::sys::prctl::set_dumpable(false);
    info!(
        user = name,
        uid = user.uid.as_raw(),
        gid = user.gid.as_raw(),
        "dropped privileges"
    );
    report.set(
        "user",
        format!("ok: dropped to {name} (uid {}, gid {})", user.uid, user.gid),
    );
    report.set("capabilities", capabilities_state());
    Ok(user.uid)
}

/// The effective capability set, as the kernel reports it.
pub fn capabilities_state() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(str::trim)
    {
        Some(eff) if eff.chars().all(|c| c == '0') => "ok: none".into(),
        Some(eff) => format!("held: CapEff {eff}"),
        None => "unknown".into(),
    }
}
