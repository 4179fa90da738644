//! Configuration: TOML text → validated [`model::Config`].
//!
//! [`load`] / [`parse`] read the file with `toml_edit` (which keeps the position of every
//! key and value), convert it section by section into the [`model`] types, apply the
//! defaults below and check everything, collecting *every* problem into one
//! [`ConfigError`] whose lines read `FILE:LINE: KEY.PATH: message`. [`summary`] renders a
//! valid configuration for `halb check`. Certificate files named by the configuration are
//! loaded and checked while it is built; what is worth saying without making the file
//! invalid (an expired certificate) lands in [`Config::warnings`].
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
//! | `defaults.mode` | `"tcp"`, `"http"` | `"tcp"` |
//! | `defaults.retries` | 0..=100 | 3 |
//! | `defaults.redispatch` | bool | `true` |
//! | `defaults.timeouts.*` | `connect` `client` `server` `http_request` `http_keep_alive` `tunnel` `check`: durations > 0 | 5s, 1m, 1m, 10s, 10s, 1h, 2s |
//! | `frontend.NAME.bind` | non-empty array of `"ip:port"`, `"[ipv6]:port"`, `":port"` | required |
//! | `frontend.NAME.mode` | `"tcp"`, `"http"` | `defaults.mode` |
//! | `frontend.NAME.maxconn` | 1.. | `global.maxconn`, else 10000 |
//! | `frontend.NAME.backlog` | 1..=2147483647 | min(maxconn, 65535) |
//! | `frontend.NAME.default_backend` | name of a backend with the same mode | required in tcp mode, optional in http mode |
//! | `frontend.NAME.timeouts.*` | `client` `http_request` `http_keep_alive` | `defaults.timeouts` |
//! | `frontend.NAME.tls` | `{ bind, certs, alpn, min_version, session_cache, session_tickets }`: TLS listener of the frontend (both modes) | unset (no TLS) |
//! | `... tls.bind` | as `bind`; no address of another listener | required |
//! | `... tls.certs` | non-empty array of absolute paths of PEM files (chain + key; `<file>.ocsp` stapled); loaded and checked, expiry is a warning | required |
//! | `... tls.alpn` | array of protocol names; in mode http only `"http/1.1"`, `"http/1.0"` | `["http/1.1"]` in mode http, `[]` in mode tcp |
//! | `... tls.min_version` | `"1.2"`, `"1.3"` | `"1.2"` |
//! | `... tls.session_cache` | 0..=10000000 sessions per shard (0 = off) | 20000 |
//! | `... tls.session_tickets` | bool | `true` |
//! | `backend.NAME.mode` | `"tcp"`, `"http"` | `defaults.mode` |
//! | `backend.NAME.balance` | `roundrobin` `static-rr` `leastconn` `source` `first`; http only: `uri [whole] [len N] [depth N]`, `url_param(NAME)`, `hdr(NAME)` | `roundrobin` |
//! | `backend.NAME.hash_type` | `map-based` `consistent` (used by the hashing balancers) | `map-based` |
//! | `backend.NAME.retries`, `.redispatch` | as in `[defaults]` | `defaults.*` |
//! | `backend.NAME.splice` | bool | `true` |
//! | `backend.NAME.timeouts.*` | `connect` `server` `tunnel` `check` | `defaults.timeouts` |
//! | `[[backend.NAME.server]]` `name` | unique in the backend | required |
//! | `... .address` | `"ip:port"` or `"[ipv6]:port"` (no hostnames) | required |
//! | `... .weight` | 0..=256 | 1 |
//! | `... .backup`, `... .disabled` | bool | `false` |
//! | `... .cookie` | cookie value (needs the backend's `cookie`) | unset |
//! | `backend.NAME.check` | `{ type = "tcp" \| "http", method, path, host, expect_status, expect_body, inter, fastinter, downinter, rise, fall, timeout, port, address, observe, error_limit, on_marked_down }` (see `docs/control.md`) | unset |
//! | `... .check` (server) | `true`, `false` or a table overriding keys of the backend's check | unset (not checked) |
//! | `... .slowstart` (server) | duration > 0 | unset |
//! | `... .tls` (server) | bool: connect with TLS | `false` |
//! | `... .verify` (server, needs `tls = true`) | `"required"` (needs `ca_file`), `"none"` (insecure) | `"required"` |
//! | `... .ca_file` (server) | absolute path of a PEM CA bundle | unset |
//! | `... .sni` (server) | DNS name sent as SNI and verified | unset (the certificate must name the server's IP) |
//! | `stats.bind` | one `"ip:port"` | required in `[stats]` |
//! | `stats.uri`, `.auth`, `.admin`, `.refresh` | path (not `/metrics`), `{ user, password }`, bool (needs `auth`), duration | `"/stats"`, none, `false`, `"5s"` |
//!
//! Only in `mode = "http"` (elsewhere an error "allowed only in mode http"; see
//! `docs/http.md`):
//!
//! | key | values | default |
//! |---|---|---|
//! | `frontend.NAME.acl.ACL` | `"fetch[(arg)] [-i] pattern ..."` or an array of them (OR-ed) | none |
//! | `[[frontend.NAME.http_request]]` | one of `redirect = "scheme S" \| "location URL" \| "prefix P"` (+ `code` 301/302/303/307/308, default 302), `deny = true \| STATUS` (4xx/5xx with an error page; `true` = 403), `set_header`/`add_header = { name, value }`, `del_header = "name"`; optional `if` or `unless` | none |
//! | `[[frontend.NAME.http_response]]` | one of `set_header`, `add_header`, `del_header`; optional `if` or `unless` | none |
//! | `[[frontend.NAME.use_backend]]` | `backend` (same mode) and `if` or `unless` (required) | none |
//! | `frontend.NAME.forwardfor` | `true`, `false`, `{ except = "cidr" \| ["cidr", ...] }` | `false` |
//! | `frontend.NAME.x_forwarded_proto`, `.x_forwarded_port` | bool | `false` |
//! | `frontend.NAME.forwarded` | `true`, `false`, `{ proto = bool, by = bool }` | `false` |
//! | `frontend.NAME.max_request_head` | bytes, 1024..=1048576 | 16384 |
//! | `frontend.NAME.max_request_line` | bytes, 256..=`max_request_head` | min(8192, `max_request_head`) |
//! | `frontend.NAME.max_headers` | 1..=1000 | 100 |
//! | `frontend.NAME.max_body_size` | bytes, 1.. | unlimited |
//! | `frontend.NAME.errorfile` | `{ STATUS = "/absolute/path" }`, STATUS among the built-in error pages | built-in pages |
//! | `backend.NAME.cookie` | `{ name, mode = "insert" \| "prefix" \| "rewrite", indirect, nocache, httponly, secure }` | unset |
//! | `backend.NAME.http_server_close` | bool | `false` |
//! | `backend.NAME.http_reuse` | `"safe"`, `"always"`, `"never"` | `"safe"` |
//! | `backend.NAME.pool_max_idle` | 0..=100000 (0 = no pooling) | 64 |
//! | `backend.NAME.pool_idle_timeout` | duration > 0 | `"30s"` |
//!
//! Frontend, backend and server names are ASCII letters, digits, `-`, `_` and `.`.
//! Durations are strings with units `ms`, `s`, `m`, `h`, `d` (`"1m30s"`); a bare number is
//! an error. Keys of later features (server `maxconn`, cookie
//! `maxidle`/`maxlife`, `[vrrp.*]`, `log = "syslog"`) are rejected as "not supported
//! yet", never ignored.

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
    let mut config = build::build(doc.as_table(), &mut reader, source);
    config.warnings = reader.take_warnings();
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
