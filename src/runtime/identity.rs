//! Dropping root after the listeners are bound (`global.user` / `global.group`).

use crate::config::Global;
use crate::sys;

/// The configured identity cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// No such user.
    #[error("global.user: no user named {0:?} on this system (create it, e.g. `useradd --system {0}`, or remove the key)")]
    NoUser(String),
    /// No such group.
    #[error("global.group: no group named {0:?} on this system")]
    NoGroup(String),
    /// Only root can switch identity.
    #[error("global.user/group: switching to {user:?} needs root (halb runs as uid {uid}); start halb as root or remove the keys")]
    NotRoot {
        /// Requested user (or group).
        user: String,
        /// Our uid.
        uid: u32,
    },
    /// The switch itself failed.
    #[error("cannot switch to user {user:?}: {source}")]
    Switch {
        /// Requested user.
        user: String,
        /// OS error.
        source: std::io::Error,
    },
}

/// Become `global.user` (and `global.group`, default: the user's primary group). Call
/// once, while the process is still single-threaded, after every privileged setup.
/// Returns the names taken, if any, for the startup log.
pub fn drop_privileges(global: &Global) -> Result<Option<String>, IdentityError> {
    if global.user.is_none() && global.group.is_none() {
        return Ok(None);
    }
    let current = sys::current_uid();
    let (uid, primary_gid, label) = match &global.user {
        Some(name) => match sys::lookup_user(name) {
            Ok(Some((uid, gid))) => (uid, gid, name.clone()),
            _ => return Err(IdentityError::NoUser(name.clone())),
        },
        None => (current, sys::current_gid(), format!("uid {current}")),
    };
    let gid = match &global.group {
        Some(name) => match sys::lookup_group(name) {
            Ok(Some(gid)) => gid,
            _ => return Err(IdentityError::NoGroup(name.clone())),
        },
        None => primary_gid,
    };
    if current != 0 {
        if uid == current && gid == sys::current_gid() {
            return Ok(None);
        }
        return Err(IdentityError::NotRoot {
            user: label,
            uid: current,
        });
    }
    sys::switch_identity(uid, gid).map_err(|source| IdentityError::Switch {
        user: label.clone(),
        source,
    })?;
    Ok(Some(format!("{label} (uid {uid}, gid {gid})")))
}
