//! The daemon hardens its own process at start, and reports each measure in `status`:
//! inherited descriptors closed, umask 077, no core dumps and not dumpable, no new privileges,
//! memory locked, and (started as root with `user` set) a drop to that user after opening what
//! needs privilege.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::mman::{MlockAllFlags, mlockall, munlockall};
use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat, umask};
use nix::unistd::{Gid, Uid, User, fchown, geteuid, initgroups, setgid, setuid};
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

/// Who may own the files a start trusts. Started as root, the daemon runs code and reads
/// secrets as root before it drops: a file someone else could change is a way to root.
#[derive(Debug, Clone)]
pub struct Owners {
    /// Who started the daemon (root under systemd).
    started_as: Uid,
    /// Who it drops to: started as root, the config's `user`, when that user exists.
    daemon_user: Option<(Uid, String)>,
}

/// What a file decides, and so who may own it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// What code runs as root: the config (it names the module) and the PKCS#11 module. Only
    /// root, or the user who started a daemon that is not root. Never the daemon's user: a
    /// compromised daemon could otherwise make the next start as root run its code.
    Code,
    /// Anything else the daemon reads (the PIN file, a password file, the firmware key, the
    /// module's configuration, the data directory): the daemon's user may own it too, as a
    /// package sets up the token directory for it.
    Data,
}

impl Owners {
    /// For this process, dropping to `user` (the config's) if it starts as root.
    pub fn for_start(user: Option<&str>) -> Self {
        let started_as = geteuid();
        let daemon_user = user
            .filter(|_| started_as.is_root())
            .and_then(|name| User::from_name(name).ok().flatten())
            .filter(|u| !u.uid.is_root())
            .map(|u| (u.uid, u.name));
        Self {
            started_as,
            daemon_user,
        }
    }

    fn allows(&self, uid: u32, trust: Trust) -> bool {
        uid == 0
            || uid == self.started_as.as_raw()
            || (trust == Trust::Data
                && self
                    .daemon_user
                    .as_ref()
                    .is_some_and(|(u, _)| u.as_raw() == uid))
    }

    /// Who may own a file of this trust, in words.
    fn allowed(&self, trust: Trust) -> String {
        let mut names = vec!["root".to_owned()];
        if !self.started_as.is_root() {
            names.push(who(self.started_as.as_raw()));
        }
        if let (Trust::Data, Some((uid, _))) = (trust, &self.daemon_user) {
            names.push(format!("the daemon's user {}", who(uid.as_raw())));
        }
        names.join(" or ")
    }
}

/// `uid N (name)`, or `uid N` for a uid no account has.
fn who(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("uid {uid} ({})", user.name),
        _ => format!("uid {uid}"),
    }
}

/// Refuses a file that someone other than `owners` allows could change: owned by another
/// user, writable by group or others, or under a directory that another user owns or that
/// group or others can write (they could replace it). A sticky directory (such as /tmp) only
/// lets each user move their own entries, so it is allowed; group write is allowed when the
/// group is root's. Both the path as written and where its links lead are checked. Returns the
/// problem in words, with the fix.
pub fn check_trusted(
    path: &Path,
    trust: Trust,
    owners: &Owners,
) -> std::result::Result<(), String> {
    let path = std::path::absolute(path).map_err(|e| e.to_string())?;
    let meta = std::fs::metadata(&path).map_err(|e| e.to_string())?;
    let shown = path.display();
    if !owners.allows(meta.uid(), trust) {
        let why = match trust {
            Trust::Code => "it decides what code runs as root, so only root may own it",
            Trust::Data => "someone who owns it can change what the daemon reads",
        };
        return Err(format!(
            "owned by {}, not by {}: {why}; run 'chown root: {shown}'",
            who(meta.uid()),
            owners.allowed(trust)
        ));
    }
    if writable_by_others(meta.mode(), meta.gid()) {
        return Err(format!(
            "writable by group or others (mode {:04o}); run 'chmod go-w {shown}'",
            meta.mode() & 0o7777
        ));
    }
    let mut dirs: Vec<std::path::PathBuf> =
        path.ancestors().skip(1).map(Path::to_path_buf).collect();
    if let Ok(real) = std::fs::canonicalize(&path) {
        dirs.extend(real.ancestors().skip(1).map(Path::to_path_buf));
    }
    for dir in dirs {
        let meta = std::fs::metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !owners.allows(meta.uid(), trust) {
            return Err(format!(
                "it is under {}, which {} owns, who could replace it; only {} may own the directories above it",
                dir.display(),
                who(meta.uid()),
                owners.allowed(trust)
            ));
        }
        let sticky = meta.mode() & 0o1000 != 0;
        if !sticky && writable_by_others(meta.mode(), meta.gid()) {
            return Err(format!(
                "it is under {}, which is writable by group or others (mode {:04o}), so anyone could replace it; run 'chmod go-w {}' or move it",
                dir.display(),
                meta.mode() & 0o7777,
                dir.display()
            ));
        }
    }
    Ok(())
}

/// World-writable, or group-writable by a group other than root's.
fn writable_by_others(mode: u32, gid: u32) -> bool {
    mode & 0o002 != 0 || (mode & 0o020 != 0 && gid != 0)
}

/// Something the daemon's user is given before the drop, because the daemon writes it after:
/// named exactly, never a directory of someone else's with whatever it holds.
#[derive(Debug, Clone, Copy)]
pub enum Handover<'a> {
    /// This entry only: the data directory, the socket, a socket directory the daemon made.
    /// A symlink is changed itself, never its target.
    Entry(&'a Path),
    /// A tree the daemon made (its database), every entry in it.
    Tree(&'a Path),
}

impl Handover<'_> {
    fn give(&self, uid: Uid, gid: Gid) -> Result<()> {
        match self {
            Self::Entry(path) => {
                std::os::unix::fs::lchown(path, Some(uid.as_raw()), Some(gid.as_raw()))
                    .map_err(|e| Error::Invalid(format!("chown {}: {e}", path.display())))
            }
            Self::Tree(path) => {
                let dir = open_dir(None, path, path)?;
                give_tree(dir, path, uid, gid)
            }
        }
    }
}

const NO_FOLLOW: OFlag = OFlag::O_NOFOLLOW
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_NONBLOCK);

/// Opens a directory without following a link (relative to `parent` when given).
fn open_dir(parent: Option<&OwnedFd>, name: &Path, shown: &Path) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | NO_FOLLOW;
    match parent {
        Some(dir) => openat(dir, name, flags, Mode::empty()),
        None => nix::fcntl::open(name, flags, Mode::empty()),
    }
    .map_err(|e| Error::Invalid(format!("open {}: {e}", shown.display())))
}

/// Gives `dir` and everything in it to the user, through descriptors: what a compromised daemon
/// user planted there (a symlink, a directory swapped for a link meanwhile) is never followed,
/// and a regular file with a second hard link (perhaps to a file outside, say /etc/shadow) is
/// refused rather than given away. Only regular files and directories are given; the database
/// holds nothing else.
fn give_tree(dir: OwnedFd, shown: &Path, uid: Uid, gid: Gid) -> Result<()> {
    let failed = |what: &str, path: &Path, e: nix::Error| {
        Error::Invalid(format!("{what} {}: {e}", path.display()))
    };
    fchown(&dir, Some(uid), Some(gid)).map_err(|e| failed("chown", shown, e))?;
    // The open directory itself, by its descriptor: a rename meanwhile changes nothing.
    let listing = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .map_err(|e| Error::Invalid(format!("read {}: {e}", shown.display())))?;
    for entry in listing {
        let name = entry
            .map_err(|e| Error::Invalid(format!("read {}: {e}", shown.display())))?
            .file_name();
        let name = Path::new(&name);
        let path = shown.join(name);
        let stat = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| failed("stat", &path, e))?;
        match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFDIR => {
                let child = open_dir(Some(&dir), name, &path)?;
                give_tree(child, &path, uid, gid)?;
            }
            SFlag::S_IFREG => {
                let file = openat(&dir, name, OFlag::O_RDONLY | NO_FOLLOW, Mode::empty())
                    .map_err(|e| failed("open", &path, e))?;
                let stat = fstat(&file).map_err(|e| failed("stat", &path, e))?;
                if stat.st_uid == uid.as_raw() && stat.st_gid == gid.as_raw() {
                    continue;
                }
                if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
                    continue;
                }
                if stat.st_nlink > 1 {
                    return Err(Error::Invalid(format!(
                        "{} has {} hard links, so it may be a file from elsewhere: it is not given to the daemon's user. The database never makes a hard link; remove it",
                        path.display(),
                        stat.st_nlink
                    )));
                }
                fchown(&file, Some(uid), Some(gid)).map_err(|e| failed("chown", &path, e))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Drops from root to `name` (and its groups), after giving it what it must write (`owned`,
/// and nothing else). Afterwards the process has no capability and cannot regain root.
pub fn drop_privileges(name: &str, owned: &[Handover<'_>], report: &mut Report) -> Result<Uid> {
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
    for handover in owned {
        handover.give(user.uid, user.gid)?;
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_daemon_user_is_trusted_with_data_never_with_code() {
        let root_start = Owners {
            started_as: Uid::from_raw(0),
            daemon_user: Some((Uid::from_raw(65534), "nobody".into())),
        };
        assert!(root_start.allows(0, Trust::Code));
        assert!(!root_start.allows(65534, Trust::Code));
        assert!(root_start.allows(65534, Trust::Data));
        assert!(!root_start.allows(4242, Trust::Data));
        assert_eq!(root_start.allowed(Trust::Code), "root");
        assert!(
            root_start
                .allowed(Trust::Data)
                .contains("the daemon's user uid 65534")
        );
        let user_start = Owners {
            started_as: Uid::from_raw(1000),
            daemon_user: None,
        };
        assert!(user_start.allows(1000, Trust::Code));
        assert!(user_start.allows(0, Trust::Code));
        assert!(!user_start.allows(1001, Trust::Data));
    }

    #[test]
    fn group_write_counts_unless_the_group_is_roots() {
        assert!(writable_by_others(0o666, 0));
        assert!(writable_by_others(0o664, 100));
        assert!(!writable_by_others(0o664, 0));
        assert!(!writable_by_others(0o644, 100));
    }

    #[test]
    fn a_file_others_could_replace_is_refused_and_a_sticky_directory_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        let file = open.join("keyward.toml");
        std::fs::write(&file, "x").unwrap();
        chmod(&file, 0o600);
        let owners = Owners::for_start(None);
        assert_eq!(check_trusted(&file, Trust::Code, &owners), Ok(()));

        chmod(&open, 0o777);
        let err = check_trusted(&file, Trust::Code, &owners).unwrap_err();
        assert!(
            err.contains(&open.display().to_string())
                && err.contains("writable by group or others (mode 0777)"),
            "{err}"
        );
        // Through a link, the directory it leads to is checked too.
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(check_trusted(&link, Trust::Code, &owners).is_err());

        chmod(&open, 0o1777);
        assert_eq!(
            check_trusted(&file, Trust::Code, &owners),
            Ok(()),
            "sticky, as /tmp"
        );
        chmod(&file, 0o666);
        let err = check_trusted(&file, Trust::Code, &owners).unwrap_err();
        assert!(
            err.starts_with("writable by group or others (mode 0666)"),
            "{err}"
        );
    }
}
