//! Least privilege: `packetbeat.run_as.user` / `packetbeat.run_as.group` (this build's options;
//! Packetbeat itself runs as whoever starts it). Capture needs root, or `CAP_NET_RAW` (and
//! `CAP_NET_ADMIN` for promiscuous mode), only to open its sockets; once they are open the
//! process becomes the configured user and group, with `no_new_privs` set, so a parser bug
//! reached by hostile traffic runs without root.
//!
//! What stays: the capture thread keeps `CAP_NET_RAW` and `CAP_NET_ADMIN` only when it may have
//! to open a socket again (`poll_default_route`) or restore the interface's flags at exit
//! (`auto_promisc_mode`); every other thread, and the capture thread otherwise, has no
//! capability. glibc applies `setuid`/`setgid` to every thread of the process; capabilities are
//! per thread, and a thread whose uid leaves 0 loses them unless it asked to keep them
//! (`PR_SET_KEEPCAPS`), which only the capture thread does; threads it starts afterwards shed
//! what they inherit ([`shed_inherited`]).
//!
//! Files opened before the drop (log files, `output.file`, the disk queue's segments) stay
//! usable; what is created later (rotated files, new segments, `path.data` writes) needs the
//! user to have write access there.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::types::lookup;
use crate::config::Config;
use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Group, Uid, User};

/// Set once the capture thread kept capabilities through the drop: threads it starts afterwards
/// inherit them and shed them with [`shed_inherited`].
static KEPT_CAPS: AtomicBool = AtomicBool::new(false);

/// At the start of a thread spawned after the drop (packet workers, the output): gives up the
/// capabilities inherited from the capture thread. Nothing to do when none were kept.
pub fn shed_inherited() {
    if KEPT_CAPS.load(Ordering::Relaxed) {
        for set in [CapSet::Effective, CapSet::Permitted] {
            if let Err(e) = caps::clear(None, set) {
                tracing::warn!("could not clear this thread's capabilities: {e}");
            }
        }
    }
}

/// The configured user and group, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: Uid,
    pub group: String,
    pub gid: Gid,
}

/// `packetbeat.run_as`: `None` when no user is configured.
pub fn run_as(cfg: &Config) -> Result<Option<RunAs>, String> {
    let text = |k: &str| -> Result<Option<String>, String> {
        match lookup(&cfg.raw, k) {
            None | Some(serde_yaml::Value::Null) => Ok(None),
            Some(serde_yaml::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(v) => Err(format!("expected a user or group name accessing '{k}' (got {v:?})")),
        }
    };
    let Some(user) = text("packetbeat.run_as.user")? else {
        if text("packetbeat.run_as.group")?.is_some() {
            return Err("packetbeat.run_as.group needs packetbeat.run_as.user".into());
        }
        return Ok(None);
    };
    let u = User::from_name(&user)
        .map_err(|e| format!("packetbeat.run_as.user: looking up '{user}': {e}"))?
        .ok_or_else(|| format!("packetbeat.run_as.user: no user '{user}'"))?;
    let (group, gid) = match text("packetbeat.run_as.group")? {
        Some(g) => {
            let found = Group::from_name(&g)
                .map_err(|e| format!("packetbeat.run_as.group: looking up '{g}': {e}"))?
                .ok_or_else(|| format!("packetbeat.run_as.group: no group '{g}'"))?;
            (g, found.gid)
        }
        None => {
            let name = Group::from_gid(u.gid)
                .ok()
                .flatten()
                .map_or_else(|| u.gid.to_string(), |g| g.name);
            (name, u.gid)
        }
    };
    Ok(Some(RunAs {
        user,
        uid: u.uid,
        group,
        gid,
    }))
}

/// Becomes `to`, keeping `CAP_NET_RAW` and `CAP_NET_ADMIN` on the calling thread when
/// `keep_net_caps`. Called on the capture thread once the capture is open.
pub fn drop_to(to: &RunAs, keep_net_caps: bool) -> Result<(), String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        format!(
            "dropping privileges to user {} and group {}: {what}: {e}",
            to.user, to.group
        )
    };
    if !Uid::effective().is_root() {
        if Uid::effective() == to.uid {
            return Ok(());
        }
        return Err(fail("not running as root", &Uid::effective()));
    }
    // SAFETY: prctl with integer arguments only.
    if keep_net_caps && unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(fail("PR_SET_KEEPCAPS", &std::io::Error::last_os_error()));
    }
    nix::unistd::setgroups(&[to.gid]).map_err(|e| fail("setgroups", &e))?;
    nix::unistd::setgid(to.gid).map_err(|e| fail("setgid", &e))?;
    nix::unistd::setuid(to.uid).map_err(|e| fail("setuid", &e))?;
    let kept: CapsHashSet = if keep_net_caps {
        [Capability::CAP_NET_RAW, Capability::CAP_NET_ADMIN]
            .into_iter()
            .collect()
    } else {
        CapsHashSet::new()
    };
    // Effective before permitted: a capability leaves the effective set first.
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new()).map_err(|e| fail("capset", &e))?;
    caps::set(None, CapSet::Effective, &kept).map_err(|e| fail("capset", &e))?;
    caps::set(None, CapSet::Permitted, &kept).map_err(|e| fail("capset", &e))?;
    KEPT_CAPS.store(keep_net_caps, Ordering::Relaxed);
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(fail("PR_SET_NO_NEW_PRIVS", &std::io::Error::last_os_error()));
    }
    tracing::info!(
        "Dropped privileges: running as user {} ({}) and group {} ({}); capabilities kept on the capture thread: {}",
        to.user,
        to.uid,
        to.group,
        to.gid,
        if keep_net_caps { "CAP_NET_RAW, CAP_NET_ADMIN" } else { "none" }
    );
    Ok(())
}
