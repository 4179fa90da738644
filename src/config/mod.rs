//! Configuration: TOML text → validated [`model::Config`].
//!
//! [`load`] / [`parse`] read the file with `toml_edit` (which keeps the position of every
//! key and value), convert it section by section into the [`model`] types, apply the
//! defaults below and check everything, collecting *every* problem into one
//! [`ConfigError`] whose lines read `FILE:LINE: KEY.PATH: message`. [`summary`] renders a
//! valid configuration for `halb check`.
//!
//! # Keys accepted now, with their defaults
//!
//! | key | values | default |
//! |---|---|---|
//! | `global.shards` | `"auto"` or 1..=1024 | `"auto"` |
//! | `global.control_core` | `"auto"`, `"shared"` or 0..=1023 | `"auto"` |
//! | `global.maxconn` | 1.. | unset (derived from RLIMIT_NOFILE at startup) |
//! | `global.user`, `global.group` | non-empty string | unset |
//! | `global.log` | `"stderr"` or `"file:/absolute/path"` | `"stderr"` |
//! | `global.admin_socket` | absolute path | unset |
//! | `global.hard_stop_after` | duration (may be `"0s"`) | `"30s"` |
//! | `global.maxpipes` | 0..=1048576 | 1024 |
//! | `global.pipesize` | bytes, 4096..=1073741824 | kernel default |
//! | `defaults.mode` | `"tcp"` | `"tcp"` |
//! | `defaults.retries` | 0..=100 | 3 |
//! | `defaults.redispatch` | bool | `true` |
//! | `defaults.timeouts.*` | `connect` `client` `server` `http_request` `http_keep_alive` `tunnel` `check`: durations > 0 | 5s, 1m, 1m, 10s, 10s, 1h, 2s |
//! | `frontend.NAME.bind` | non-empty array of `"ip:port"`, `"[ipv6]:port"`, `":port"` | required |
//! | `frontend.NAME.mode` | `"tcp"` | `defaults.mode` |
//! | `frontend.NAME.maxconn` | 1.. | `global.maxconn`, else 10000 |
//! | `frontend.NAME.backlog` | 1..=2147483647 | min(maxconn, 65535) |
//! | `frontend.NAME.default_backend` | name of a backend with the same mode | required |
//! | `frontend.NAME.timeouts.*` | `client` `http_request` `http_keep_alive` | `defaults.timeouts` |
//! | `backend.NAME.mode` | `"tcp"` | `defaults.mode` |
//! | `backend.NAME.balance` | `roundrobin` `static-rr` `leastconn` `source` `first` | `roundrobin` |
//! | `backend.NAME.hash_type` | `map-based` `consistent` (used by `source`) | `map-based` |
//! | `backend.NAME.retries`, `.redispatch` | as in `[defaults]` | `defaults.*` |
//! | `backend.NAME.splice` | bool | `true` |
//! | `backend.NAME.timeouts.*` | `connect` `server` `tunnel` `check` | `defaults.timeouts` |
//! | `[[backend.NAME.server]]` `name` | unique in the backend | required |
//! | `... .address` | `"ip:port"` or `"[ipv6]:port"` (no hostnames) | required |
//! | `... .weight` | 0..=256 | 1 |
//! | `... .backup`, `... .disabled` | bool | `false` |
//!
//! Frontend, backend and server names are ASCII letters, digits, `-`, `_` and `.`.
//! Durations are strings with units `ms`, `s`, `m`, `h`, `d` (`"1m30s"`); a bare number is
//! an error. Keys of later features (`mode = "http"`, `tls`, `acl`, `http_request`,
//! `use_backend`, `forwardfor`, `cookie`, `check`, `slowstart`, server `maxconn`,
//! `[stats]`, `[vrrp.*]`, `log = "syslog"`, balance `uri`/`url_param`/`hdr`) are rejected
//! as "not supported yet", never ignored.

mod build;
mod error;
pub mod model;
mod reader;
mod suggest;
mod summary;
mod syntax;
mod value;

use std::path::Path;

pub use error::{ConfigError, Diagnostic};
pub use model::*;
pub use summary::summary;
pub use value::{format_duration, parse_bind_address, parse_duration, parse_server_address};

/// Reads and validates the configuration file at `path`.
///
/// Every problem is reported (not only the first), each naming `path`, a line and a key.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, path),
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            Err(ConfigError::Invalid {
                diagnostics: vec![Diagnostic {
                    file: path.to_path_buf(),
                    line,
                    key: "-".to_string(),
                    message: "the file is not valid UTF-8".to_string(),
                }],
            })
        }
    }
}

/// Validates configuration `text`; `source` names it in diagnostics and becomes
/// [`Config::source`] (a real path, or a label such as `<demo>`).
pub fn parse(text: &str, source: &Path) -> Result<Config, ConfigError> {
    let mut reader = reader::Reader::new(source, text);
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(err) => {
            let (line, key, message) = syntax::describe(&reader, text, &err);
            reader.error(line, &key, message);
            return Err(ConfigError::Invalid {
                diagnostics: reader.into_diagnostics(),
            });
        }
    };
    let config = build::build(doc.as_table(), &mut reader, source);
    if reader.has_errors() {
        Err(ConfigError::Invalid {
            diagnostics: reader.into_diagnostics(),
        })
    } else {
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
