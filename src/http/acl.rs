//! ACLs and `if`/`unless` conditions with HAProxy syntax, sans-io.
//!
//! Everything is compiled when the configuration is loaded ([`AclSet::parse`],
//! [`Condition::parse`]): regexes are built, case-insensitive patterns lowercased,
//! CIDRs parsed. [`Condition::eval`] then only reads the request through
//! [`RequestFacts`] and allocates nothing.
//!
//! # Definitions
//!
//! `name = "fetch[(arg)] [flags] pattern pattern ..."`, as in
//! `[frontend.<name>.acl]`. Several patterns are OR-ed. Several definitions with the
//! same name are OR-ed too (HAProxy merges repeated `acl` lines).
//!
//! | fetch              | matches                                                  |
//! |--------------------|----------------------------------------------------------|
//! | `path`             | the path (no query string) equals a pattern              |
//! | `path_beg`/`_end`/`_sub` | the path starts with / ends with / contains a pattern |
//! | `path_reg`         | a regex finds a match in the path (unanchored, like HAProxy) |
//! | `hdr(name)`        | a header value equals a pattern                          |
//! | `hdr_beg/_end/_sub/_reg(name)` | as for `path_*`, on header values            |
//! | `method`           | the method equals a pattern (case-sensitive unless `-i`) |
//! | `src`              | the client address is in one of the CIDRs / addresses    |
//! | `url_param(name)`  | the value of query parameter `name` equals a pattern     |
//! | `ssl_fc`           | the client connection is TLS; takes no patterns          |
//!
//! Flags: `-i` (case-insensitive, ASCII folding, regexes included) and `--` (end of
//! flags, for a pattern starting with `-`). Patterns are separated by whitespace; a
//! pattern can be quoted with `"..."` or `'...'` to contain spaces. Backslashes are
//! never interpreted by this layer (so `path_reg ^/a\.js$` reaches the regex as is).
//!
//! # Semantics decisions (HAProxy's unless noted)
//!
//! - `hdr*(name)`: the header name is case-insensitive. As in HAProxy's `req.hdr`, a
//!   comma separates values, and every value of every occurrence is tried (surrounding
//!   spaces/tabs trimmed): the ACL matches if any of them matches. `hdr(host)` sees the
//!   full Host value, **port included** — `hdr(host) example.com` does not match
//!   `Host: example.com:8080`; use `hdr_beg(host)` or a regex, as with HAProxy.
//! - `path` is what [`RequestFacts::path`] returns: the path without the query string.
//! - `url_param(name)`: the query string is split on `&`; a parameter is `name=value`
//!   with `name` compared case-sensitively; a parameter without `=` has no value and
//!   never matches. Every occurrence is tried. Values are compared **raw**: no
//!   percent-decoding and no `+` → space, so `?q=a%20b` matches the pattern `a%20b`,
//!   not `a b`.
//! - `src`: IPv4 patterns also match IPv4-mapped IPv6 clients (`::ffff:10.0.0.1`), and
//!   IPv6 patterns covering `::ffff:0:0/96` (e.g. `::/0`) match IPv4 clients, since
//!   both are compared as IPv6. A bare address is a /32 or /128; host bits set under
//!   the mask are ignored (`10.0.0.1/8` is `10.0.0.0/8`); an IPv4 netmask may be
//!   dotted (`10.0.0.0/255.0.0.0`). No client address (e.g. a UNIX socket) → no match.
//! - An ACL without patterns is an error (except `ssl_fc`, which takes none).
//! - Predefined ACLs: `TRUE`, `FALSE`, `LOCALHOST` (`src 127.0.0.1/8 ::1`), `ssl_fc`
//!   (true on TLS connections, so `unless = "ssl_fc"` works as CONFIG.md writes it), and
//!   `METH_CONNECT`, `METH_DELETE`, `METH_GET` (GET and HEAD), `METH_HEAD`,
//!   `METH_OPTIONS`, `METH_POST`, `METH_PUT`, `METH_TRACE`. They cannot be redefined.
//!
//! # Conditions
//!
//! `if = "a b || !c"`: names separated by spaces are AND-ed, `||` (or the word `or`)
//! separates OR-groups, AND binds tighter than OR, `!name` negates one ACL. `unless`
//! negates the whole condition. Anonymous ACLs (`{ ... }`) are not supported.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder};

use super::cidr::{self, Cidr};
use thiserror::Error;

/// What an ACL can look at in a request. Implemented by the L7 proxy over a parsed
/// request head; dyn-compatible, so conditions take `&dyn RequestFacts`.
pub trait RequestFacts {
    /// The path of the request target, without `?` and the query string.
    fn path(&self) -> &[u8];
    /// The query string, after `?` (not included), if the target has one.
    fn query(&self) -> Option<&[u8]>;
    /// The method, as sent.
    fn method(&self) -> &[u8];
    /// Calls `f` with the value of each field named `name` (lowercase; compare
    /// case-insensitively), in order, and stops as soon as `f` returns `true`.
    /// Returns whether `f` returned `true`.
    fn any_header_value(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool;
    /// The client address, if the client is on IP.
    fn src(&self) -> Option<IpAddr>;
    /// Whether the client connection is TLS.
    fn ssl(&self) -> bool;
}

/// A definition or condition that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AclError {
    /// An ACL definition is invalid.
    #[error("acl `{name}`: {msg}")]
    Definition { name: String, msg: String },
    /// An `if`/`unless` condition is invalid.
    #[error("condition `{cond}`: {msg}")]
    Condition { cond: String, msg: String },
}

impl AclError {
    fn def(name: &str, msg: impl Into<String>) -> Self {
        AclError::Definition {
            name: name.to_string(),
            msg: msg.into(),
        }
    }

    fn cond(cond: &str, msg: impl Into<String>) -> Self {
        AclError::Condition {
            cond: cond.to_string(),
            msg: msg.into(),
        }
    }

    /// The message without the ACL name or condition text.
    pub fn message(&self) -> &str {
        match self {
            AclError::Definition { msg, .. } | AclError::Condition { msg, .. } => msg,
        }
    }
}

const FETCHES: &str = "path, path_beg, path_end, path_sub, path_reg, hdr(name), \
hdr_beg(name), hdr_end(name), hdr_sub(name), hdr_reg(name), method, src, \
url_param(name), ssl_fc";

const PREDEFINED: &[(&str, &str)] = &[
    ("TRUE", "always_true"),
    ("FALSE", "always_false"),
    ("LOCALHOST", "src 127.0.0.1/8 ::1"),
    // So that a boolean fetch reads as a condition, as CONFIG.md writes it
    // (`unless = "ssl_fc"`; HAProxy spells it `unless { ssl_fc }`).
    ("ssl_fc", "ssl_fc"),
    ("METH_CONNECT", "method CONNECT"),
    ("METH_DELETE", "method DELETE"),
    ("METH_GET", "method GET HEAD"),
    ("METH_HEAD", "method HEAD"),
    ("METH_OPTIONS", "method OPTIONS"),
    ("METH_POST", "method POST"),
    ("METH_PUT", "method PUT"),
    ("METH_TRACE", "method TRACE"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Beg,
    End,
    Sub,
}

/// Where the sample comes from.
#[derive(Debug)]
enum Fetch {
    Path,
    Method,
    /// Lowercase header name.
    Header(Box<str>),
    UrlParam(Box<[u8]>),
    Src,
    Ssl,
    Const(bool),
}

/// How samples are compared, with everything precompiled.
#[derive(Debug)]
enum Patterns {
    /// `pats` are lowercase when `ci`.
    Str {
        kind: Kind,
        ci: bool,
        pats: Vec<Box<[u8]>>,
    },
    Reg(Vec<Regex>),
    Ip(Vec<Cidr>),
    Bool,
}

#[derive(Debug)]
struct Matcher {
    fetch: Fetch,
    pats: Patterns,
}

/// One named ACL: matches if any of its definitions matches.
#[derive(Debug)]
struct Acl {
    name: Box<str>,
    matchers: Vec<Matcher>,
}

/// The compiled ACLs of one frontend.
#[derive(Debug, Clone, Default)]
pub struct AclSet {
    acls: Vec<Arc<Acl>>,
}

/// Splits a definition into words; quotes group, backslashes are literal.
fn words(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn valid_acl_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

fn compile(name: &str, text: &str) -> Result<Matcher, AclError> {
    let err = |m: String| AclError::def(name, m);
    let words = words(text).map_err(err)?;
    let Some((fetch_word, rest)) = words.split_first() else {
        return Err(err(format!(
            "empty definition; expected `fetch [-i] pattern ...` with a fetch among: {FETCHES}"
        )));
    };
    let (fname, arg) = match fetch_word.find('(') {
        Some(open) => {
            let Some(inner) = fetch_word[open + 1..].strip_suffix(')') else {
                return Err(err(format!("`{fetch_word}`: missing `)`")));
            };
            (&fetch_word[..open], Some(inner))
        }
        None => (fetch_word.as_str(), None),
    };
    // Flags.
    let mut ci = false;
    let mut i = 0;
    while i < rest.len() && rest[i].starts_with('-') {
        match rest[i].as_str() {
            "-i" => ci = true,
            "--" => {
                i += 1;
                break;
            }
            f => {
                return Err(err(format!(
                    "unsupported flag `{f}` (allowed: -i for case-insensitive, -- to end flags)"
                )))
            }
        }
        i += 1;
    }
    let pats: Vec<&str> = rest[i..].iter().map(String::as_str).collect();

    let (base, kind) = match fname {
        "path" => ("path", Some(Kind::Exact)),
        "path_beg" => ("path", Some(Kind::Beg)),
        "path_end" => ("path", Some(Kind::End)),
        "path_sub" => ("path", Some(Kind::Sub)),
        "path_reg" => ("path", None),
        "hdr" => ("hdr", Some(Kind::Exact)),
        "hdr_beg" => ("hdr", Some(Kind::Beg)),
        "hdr_end" => ("hdr", Some(Kind::End)),
        "hdr_sub" => ("hdr", Some(Kind::Sub)),
        "hdr_reg" => ("hdr", None),
        "method" | "url_param" => (fname, Some(Kind::Exact)),
        "src" | "ssl_fc" | "always_true" | "always_false" => (fname, None),
        other => {
            return Err(err(format!("unknown fetch `{other}`; allowed: {FETCHES}")));
        }
    };
    let needs_arg = matches!(base, "hdr" | "url_param");
    let arg = match (needs_arg, arg) {
        (true, Some(a)) if !a.trim().is_empty() => Some(a.trim()),
        (true, _) => return Err(err(format!("`{fname}` needs an argument: `{fname}(name)`"))),
        (false, Some(_)) => {
            return Err(err(format!("`{fname}` takes no argument")));
        }
        (false, None) => None,
    };
    let fetch = match base {
        "path" => Fetch::Path,
        "hdr" => Fetch::Header(arg.unwrap_or_default().to_ascii_lowercase().into()),
        "method" => Fetch::Method,
        "url_param" => Fetch::UrlParam(arg.unwrap_or_default().as_bytes().into()),
        "src" => Fetch::Src,
        "ssl_fc" => Fetch::Ssl,
        "always_true" => Fetch::Const(true),
        _ => Fetch::Const(false),
    };
    if matches!(fetch, Fetch::Ssl | Fetch::Const(_)) {
        if ci || !pats.is_empty() {
            return Err(err(format!(
                "`{fname}` is a boolean and takes no flags or patterns (got `{}`)",
                rest.join(" ")
            )));
        }
        return Ok(Matcher {
            fetch,
            pats: Patterns::Bool,
        });
    }
    if pats.is_empty() {
        return Err(err(format!("`{fname}` needs at least one pattern")));
    }
    let pats = if let Fetch::Src = fetch {
        if ci {
            return Err(err("`-i` does not apply to `src`".to_string()));
        }
        Patterns::Ip(
            pats.iter()
                .map(|p| Cidr::parse(p))
                .collect::<Result<_, _>>()
                .map_err(err)?,
        )
    } else if let Some(kind) = kind {
        let pats = pats
            .iter()
            .map(|p| {
                let b = if ci {
                    p.to_ascii_lowercase()
                } else {
                    p.to_string()
                };
                b.into_bytes().into_boxed_slice()
            })
            .collect();
        Patterns::Str { kind, ci, pats }
    } else {
        let regs = pats
            .iter()
            .map(|p| {
                RegexBuilder::new(p)
                    .case_insensitive(ci)
                    .build()
                    .map_err(|e| err(format!("invalid regex `{p}`: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Patterns::Reg(regs)
    };
    Ok(Matcher { fetch, pats })
}

impl AclSet {
    /// Compiles `(name, definition)` pairs. A repeated name ORs its definitions.
    pub fn parse(defs: &[(String, String)]) -> Result<AclSet, AclError> {
        let mut set = AclSet::default();
        let mut user: Vec<(String, Vec<Matcher>)> = Vec::new();
        for (name, text) in defs {
            if !valid_acl_name(name) {
                return Err(AclError::def(
                    name,
                    "invalid name: use letters, digits, `_`, `.`, `:` and `-`",
                ));
            }
            if PREDEFINED.iter().any(|(p, _)| p == name) {
                return Err(AclError::def(
                    name,
                    "is a predefined ACL and cannot be redefined",
                ));
            }
            let m = compile(name, text)?;
            match user.iter_mut().find(|(n, _)| n == name) {
                Some((_, ms)) => ms.push(m),
                None => user.push((name.clone(), vec![m])),
            }
        }
        for (name, matchers) in user {
            set.acls.push(Arc::new(Acl {
                name: name.into(),
                matchers,
            }));
        }
        for (name, text) in PREDEFINED {
            let m = compile(name, text).expect("predefined ACLs compile");
            set.acls.push(Arc::new(Acl {
                name: (*name).into(),
                matchers: vec![m],
            }));
        }
        Ok(set)
    }

    fn get(&self, name: &str) -> Option<&Arc<Acl>> {
        self.acls.iter().find(|a| &*a.name == name)
    }

    /// Names of the ACLs, user-defined first, then predefined.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.acls.iter().map(|a| &*a.name)
    }
}

#[derive(Debug, Clone)]
struct Term {
    acl: Arc<Acl>,
    neg: bool,
}

/// A compiled `if`/`unless` condition: OR of AND-groups of (possibly negated) ACLs.
#[derive(Debug, Clone)]
pub struct Condition {
    groups: Vec<Vec<Term>>,
    /// `unless`: the result is inverted.
    negate: bool,
}

fn did_you_mean(word: &str, set: &AclSet) -> String {
    let best = set
        .names()
        .map(|n| {
            (
                strsim::jaro_winkler(&word.to_ascii_lowercase(), &n.to_ascii_lowercase()),
                n,
            )
        })
        .filter(|(s, _)| *s >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, n)) => format!(" (did you mean `{n}`?)"),
        None => String::new(),
    }
}

impl Condition {
    /// Compiles a condition against `acls`; `negate` is true for `unless`.
    pub fn parse(text: &str, acls: &AclSet, negate: bool) -> Result<Condition, AclError> {
        let err = |m: String| AclError::cond(text, m);
        let mut groups = Vec::new();
        let mut group: Vec<Term> = Vec::new();
        for word in text.split_whitespace() {
            if word == "||" || word == "or" {
                if group.is_empty() {
                    return Err(err(format!("`{word}` with nothing before it")));
                }
                groups.push(std::mem::take(&mut group));
                continue;
            }
            if word.starts_with('{') || word.ends_with('}') {
                return Err(err(
                    "anonymous ACLs `{ ... }` are not supported; define a named ACL".into(),
                ));
            }
            let name = word.trim_start_matches('!');
            let neg = (word.len() - name.len()) % 2 == 1;
            if name.is_empty() {
                return Err(err(format!(
                    "`{word}` must be followed by an ACL name, as in `!name`"
                )));
            }
            let Some(acl) = acls.get(name) else {
                return Err(err(format!(
                    "unknown acl `{name}`{}",
                    did_you_mean(name, acls)
                )));
            };
            group.push(Term {
                acl: Arc::clone(acl),
                neg,
            });
        }
        if group.is_empty() {
            return Err(err(if groups.is_empty() {
                "empty condition; expected ACL names, `!name`, and `||`".into()
            } else {
                "`||` with nothing after it".into()
            }));
        }
        groups.push(group);
        Ok(Condition { groups, negate })
    }

    /// Whether the rule applies to this request.
    pub fn eval(&self, req: &dyn RequestFacts) -> bool {
        let hit = self
            .groups
            .iter()
            .any(|g| g.iter().all(|t| t.acl.matches(req) != t.neg));
        hit != self.negate
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negate {
            f.write_str("unless ")?;
        } else {
            f.write_str("if ")?;
        }
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                f.write_str(" || ")?;
            }
            for (j, t) in g.iter().enumerate() {
                if j > 0 {
                    f.write_str(" ")?;
                }
                if t.neg {
                    f.write_str("!")?;
                }
                f.write_str(&t.acl.name)?;
            }
        }
        Ok(())
    }
}

impl Acl {
    fn matches(&self, req: &dyn RequestFacts) -> bool {
        self.matchers.iter().any(|m| m.matches(req))
    }
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn eq(a: &[u8], lower_pat: &[u8], ci: bool) -> bool {
    if ci {
        a.eq_ignore_ascii_case(lower_pat)
    } else {
        a == lower_pat
    }
}

impl Patterns {
    fn matches(&self, s: &[u8]) -> bool {
        match self {
            Patterns::Str { kind, ci, pats } => pats.iter().any(|p| {
                let p = &p[..];
                match kind {
                    Kind::Exact => eq(s, p, *ci),
                    Kind::Beg => s.len() >= p.len() && eq(&s[..p.len()], p, *ci),
                    Kind::End => s.len() >= p.len() && eq(&s[s.len() - p.len()..], p, *ci),
                    Kind::Sub => p.is_empty() || s.windows(p.len()).any(|w| eq(w, p, *ci)),
                }
            }),
            Patterns::Reg(regs) => regs.iter().any(|r| r.is_match(s)),
            Patterns::Ip(_) | Patterns::Bool => false,
        }
    }
}

impl Matcher {
    fn matches(&self, req: &dyn RequestFacts) -> bool {
        match &self.fetch {
            Fetch::Path => self.pats.matches(req.path()),
            Fetch::Method => self.pats.matches(req.method()),
            Fetch::Header(name) => req.any_header_value(name, &mut |v: &[u8]| {
                v.split(|&b| b == b',')
                    .any(|item| self.pats.matches(trim_ows(item)))
            }),
            Fetch::UrlParam(name) => match req.query() {
                None => false,
                Some(q) => q.split(|&b| b == b'&').any(|param| {
                    param.len() > name.len()
                        && param.starts_with(name)
                        && param[name.len()] == b'='
                        && self.pats.matches(&param[name.len() + 1..])
                }),
            },
            Fetch::Src => match (req.src(), &self.pats) {
                (Some(ip), Patterns::Ip(cidrs)) => {
                    let bits = cidr::bits(ip);
                    cidrs.iter().any(|c| c.contains_bits(bits))
                }
                _ => false,
            },
            Fetch::Ssl => req.ssl(),
            Fetch::Const(b) => *b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[derive(Default)]
    struct Req {
        path: &'static str,
        query: Option<&'static str>,
        method: &'static str,
        headers: Vec<(&'static str, &'static str)>,
        src: Option<IpAddr>,
        ssl: bool,
    }

    impl RequestFacts for Req {
        fn path(&self) -> &[u8] {
            self.path.as_bytes()
        }
        fn query(&self) -> Option<&[u8]> {
            self.query.map(str::as_bytes)
        }
        fn method(&self) -> &[u8] {
            self.method.as_bytes()
        }
        fn any_header_value(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .any(|(_, v)| f(v.as_bytes()))
        }
        fn src(&self) -> Option<IpAddr> {
            self.src
        }
        fn ssl(&self) -> bool {
            self.ssl
        }
    }

    fn req() -> Req {
        Req {
            path: "/",
            method: "GET",
            ..Req::default()
        }
    }

    fn path(p: &'static str) -> Req {
        Req { path: p, ..req() }
    }

    fn hdr(name: &'static str, value: &'static str) -> Req {
        Req {
            headers: vec![(name, value)],
            ..req()
        }
    }

    fn src(ip: &str) -> Req {
        Req {
            src: Some(ip.parse().unwrap()),
            ..req()
        }
    }

    fn query(q: &'static str) -> Req {
        Req {
            query: Some(q),
            ..req()
        }
    }

    fn set(defs: &[(&str, &str)]) -> AclSet {
        let defs: Vec<(String, String)> = defs
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_string()))
            .collect();
        AclSet::parse(&defs).unwrap()
    }

    fn set_err(defs: &[(&str, &str)]) -> AclError {
        let defs: Vec<(String, String)> = defs
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_string()))
            .collect();
        AclSet::parse(&defs).unwrap_err()
    }

    /// One ACL `a = def`, evaluated as `if a`.
    fn one(def: &str) -> Condition {
        Condition::parse("a", &set(&[("a", def)]), false).unwrap()
    }

    fn cond(defs: &[(&str, &str)], text: &str) -> Condition {
        Condition::parse(text, &set(defs), false).unwrap()
    }

    // ---- path ----

    #[test]
    fn path_exact() {
        let c = one("path /a /b");
        assert!(c.eval(&path("/a")));
        assert!(c.eval(&path("/b")));
        assert!(!c.eval(&path("/a/")));
        assert!(!c.eval(&path("/A")));
        assert!(!c.eval(&path("/ab")));
    }

    #[test]
    fn path_exact_case_insensitive() {
        let c = one("path -i /Admin");
        assert!(c.eval(&path("/admin")));
        assert!(c.eval(&path("/ADMIN")));
        assert!(!c.eval(&path("/admins")));
    }

    #[test]
    fn path_beg() {
        let c = one("path_beg /api /v1");
        assert!(c.eval(&path("/api")));
        assert!(c.eval(&path("/api/users")));
        assert!(c.eval(&path("/v1/x")));
        assert!(!c.eval(&path("/ap")));
        assert!(!c.eval(&path("/API/users")));
        assert!(!c.eval(&path("/x/api")));
        assert!(one("path_beg -i /API").eval(&path("/api/users")));
    }

    #[test]
    fn path_end() {
        let c = one("path_end .css .js .png");
        assert!(c.eval(&path("/s/app.css")));
        assert!(c.eval(&path("/app.js")));
        assert!(c.eval(&path("/i.png")));
        assert!(!c.eval(&path("/i.PNG")));
        assert!(!c.eval(&path("/app.json")));
        assert!(!c.eval(&path("s")));
        assert!(one("path_end -i .PNG").eval(&path("/i.png")));
        assert!(one("path_end -i .png").eval(&path("/i.PnG")));
    }

    #[test]
    fn path_sub() {
        let c = one("path_sub admin secret");
        assert!(c.eval(&path("/x/admin/y")));
        assert!(c.eval(&path("/topsecret")));
        assert!(!c.eval(&path("/Admin")));
        assert!(!c.eval(&path("/adm")));
        assert!(one("path_sub -i ADMIN").eval(&path("/x/Admin/y")));
    }

    #[test]
    fn path_reg_unanchored_and_anchored() {
        let c = one(r"path_reg ^/api/v[0-9]+/ \.php$");
        assert!(c.eval(&path("/api/v12/users")));
        assert!(c.eval(&path("/index.php")));
        assert!(!c.eval(&path("/api/vx/users")));
        assert!(!c.eval(&path("/index.php5")));
        // Unanchored like HAProxy: a match anywhere counts.
        assert!(one("path_reg adm").eval(&path("/x/admin")));
    }

    #[test]
    fn path_reg_case_insensitive() {
        assert!(!one("path_reg ^/ADMIN").eval(&path("/admin")));
        assert!(one("path_reg -i ^/ADMIN").eval(&path("/admin")));
        assert!(one("path_reg -i ^/admin$").eval(&path("/AdMiN")));
    }

    #[test]
    fn path_reg_non_utf8_path() {
        let c = one("path_reg ^/a.b$");
        let r = Req {
            path: "/a\u{e9}b",
            ..req()
        };
        // `.` matches one UTF-8 char; a raw byte path must not panic either.
        assert!(c.eval(&r));
        struct Raw;
        impl RequestFacts for Raw {
            fn path(&self) -> &[u8] {
                b"/a\xffb"
            }
            fn query(&self) -> Option<&[u8]> {
                None
            }
            fn method(&self) -> &[u8] {
                b"GET"
            }
            fn any_header_value(&self, _: &str, _: &mut dyn FnMut(&[u8]) -> bool) -> bool {
                false
            }
            fn src(&self) -> Option<IpAddr> {
                None
            }
            fn ssl(&self) -> bool {
                false
            }
        }
        assert!(!one("path_reg ^/a.b$").eval(&Raw));
        assert!(one("path_beg /a").eval(&Raw));
    }

    #[test]
    fn quoted_pattern_with_space() {
        let c = one("path '/a b' \"/c d\"");
        assert!(c.eval(&path("/a b")));
        assert!(c.eval(&path("/c d")));
        assert!(!c.eval(&path("/a")));
    }

    #[test]
    fn double_dash_ends_flags() {
        let c = one("hdr(x-mode) -- -i");
        assert!(c.eval(&hdr("X-Mode", "-i")));
        assert!(!c.eval(&hdr("X-Mode", "i")));
        let c = one("hdr(x-mode) -i -- -ON");
        assert!(c.eval(&hdr("X-Mode", "-on")));
    }

    // ---- headers ----

    #[test]
    fn hdr_exact_full_value_port_included() {
        let c = one("hdr(host) www.test1.com");
        assert!(c.eval(&hdr("Host", "www.test1.com")));
        assert!(!c.eval(&hdr("Host", "www.test1.com:8080")));
        assert!(!c.eval(&hdr("Host", "WWW.test1.com")));
        assert!(!c.eval(&req()));
        assert!(one("hdr(host) -i WWW.Test1.com").eval(&hdr("host", "www.TEST1.com")));
    }

    #[test]
    fn hdr_name_is_case_insensitive() {
        let c = one("hdr(X-Env) prod");
        assert!(c.eval(&hdr("x-env", "prod")));
        assert!(c.eval(&hdr("X-ENV", "prod")));
    }

    #[test]
    fn hdr_beg_end_sub() {
        assert!(one("hdr_beg(host) www.test1.com").eval(&hdr("Host", "www.test1.com:8080")));
        assert!(!one("hdr_beg(host) www.test1.com").eval(&hdr("Host", "test1.com")));
        assert!(one("hdr_beg(host) -i WWW.").eval(&hdr("Host", "www.x")));
        assert!(one("hdr_end(host) .example.com").eval(&hdr("Host", "a.example.com")));
        assert!(!one("hdr_end(host) .example.com").eval(&hdr("Host", "a.example.com:80")));
        assert!(one("hdr_end(host) -i .COM").eval(&hdr("Host", "a.com")));
        assert!(one("hdr_sub(user-agent) curl").eval(&hdr("User-Agent", "x curl/8")));
        assert!(!one("hdr_sub(user-agent) Curl").eval(&hdr("User-Agent", "curl/8")));
        assert!(one("hdr_sub(user-agent) -i Curl").eval(&hdr("User-Agent", "curl/8")));
    }

    #[test]
    fn hdr_reg() {
        let c = one(r"hdr_reg(host) ^(www\.)?example\.(com|org)$");
        assert!(c.eval(&hdr("Host", "example.com")));
        assert!(c.eval(&hdr("Host", "www.example.org")));
        assert!(!c.eval(&hdr("Host", "wwwXexample.com")));
        assert!(!c.eval(&hdr("Host", "EXAMPLE.com")));
        assert!(one(r"hdr_reg(host) -i ^example\.com$").eval(&hdr("Host", "EXAMPLE.COM")));
    }

    #[test]
    fn hdr_any_occurrence_matches() {
        let r = Req {
            headers: vec![("X-Tag", "a"), ("Other", "b"), ("x-tag", "b")],
            ..req()
        };
        assert!(one("hdr(x-tag) b").eval(&r));
        assert!(one("hdr(x-tag) a").eval(&r));
        assert!(!one("hdr(x-tag) c").eval(&r));
        assert!(!one("hdr(other) a").eval(&r));
    }

    #[test]
    fn hdr_comma_separated_values_are_tried_each_trimmed() {
        let c = one("hdr(x-forwarded-for) 10.0.0.2");
        assert!(c.eval(&hdr("X-Forwarded-For", "10.0.0.1, 10.0.0.2")));
        assert!(c.eval(&hdr("X-Forwarded-For", "10.0.0.2,\t10.0.0.1")));
        assert!(!c.eval(&hdr("X-Forwarded-For", "10.0.0.1, 10.0.0.22")));
        assert!(one("hdr_end(accept) json").eval(&hdr("Accept", "text/html, app/json")));
        assert!(one("hdr(x) v").eval(&hdr("X", "  v  ")));
    }

    // ---- method ----

    #[test]
    fn method_exact_case_sensitive_unless_i() {
        let c = one("method GET HEAD");
        assert!(c.eval(&req()));
        assert!(c.eval(&Req {
            method: "HEAD",
            ..req()
        }));
        assert!(!c.eval(&Req {
            method: "POST",
            ..req()
        }));
        assert!(!c.eval(&Req {
            method: "get",
            ..req()
        }));
        assert!(one("method -i get").eval(&Req {
            method: "GET",
            ..req()
        }));
    }

    // ---- src ----

    #[test]
    fn src_ipv4_cidrs() {
        let c = one("src 10.0.0.0/8 192.168.1.0/24 203.0.113.7");
        assert!(c.eval(&src("10.1.2.3")));
        assert!(c.eval(&src("192.168.1.255")));
        assert!(!c.eval(&src("192.168.2.1")));
        assert!(c.eval(&src("203.0.113.7")));
        assert!(!c.eval(&src("203.0.113.8")));
        assert!(!c.eval(&src("11.0.0.1")));
        assert!(!c.eval(&req()), "no source address never matches");
    }

    #[test]
    fn src_ipv4_slash_32_and_0() {
        let c = one("src 198.51.100.9/32");
        assert!(c.eval(&src("198.51.100.9")));
        assert!(!c.eval(&src("198.51.100.8")));
        let all = one("src 0.0.0.0/0");
        assert!(all.eval(&src("1.2.3.4")));
        assert!(all.eval(&src("255.255.255.255")));
        assert!(!all.eval(&src("2001:db8::1")), "0.0.0.0/0 is IPv4 only");
    }

    #[test]
    fn src_ipv6_cidrs_incl_128_and_0() {
        let c = one("src 2001:db8::/32 fe80::1/128");
        assert!(c.eval(&src("2001:db8:ffff::1")));
        assert!(!c.eval(&src("2001:db9::1")));
        assert!(c.eval(&src("fe80::1")));
        assert!(!c.eval(&src("fe80::2")));
        assert!(!c.eval(&src("10.0.0.1")));
        let all = one("src ::/0");
        assert!(all.eval(&src("2001:db8::1")));
        assert!(all.eval(&src("::")));
        assert!(
            all.eval(&src("10.0.0.1")),
            "IPv4 is compared as ::ffff:a.b.c.d"
        );
    }

    #[test]
    fn src_v4_mapped_v6_client_matches_v4_pattern() {
        let c = one("src 10.0.0.0/8");
        let mapped = std::net::Ipv4Addr::new(10, 9, 8, 7).to_ipv6_mapped();
        assert!(c.eval(&Req {
            src: Some(IpAddr::V6(mapped)),
            ..req()
        }));
        assert!(!c.eval(&Req {
            src: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ..req()
        }));
    }

    #[test]
    fn src_host_bits_and_dotted_mask() {
        let c = one("src 10.1.2.3/8");
        assert!(c.eval(&src("10.200.0.1")));
        let c = one("src 172.16.0.0/255.240.0.0");
        assert!(c.eval(&src("172.31.255.255")));
        assert!(!c.eval(&src("172.32.0.0")));
    }

    // ---- url_param ----

    #[test]
    fn url_param_exact_value() {
        let c = one("url_param(user) alice bob");
        assert!(c.eval(&query("user=alice")));
        assert!(c.eval(&query("a=1&user=bob&b=2")));
        assert!(!c.eval(&query("a=1&user=carol")));
        assert!(!c.eval(&query("xuser=alice")));
        assert!(!c.eval(&query("user=alice2")));
        assert!(
            !c.eval(&query("User=alice")),
            "parameter names are case-sensitive"
        );
        assert!(!c.eval(&query("user")), "no `=`, no value");
        assert!(!c.eval(&req()), "no query string");
    }

    #[test]
    fn url_param_any_occurrence_and_ci() {
        let c = one("url_param(id) 7");
        assert!(c.eval(&query("id=1&id=7")));
        assert!(one("url_param(v) -i YES").eval(&query("v=yes")));
        assert!(!one("url_param(v) YES").eval(&query("v=yes")));
    }

    #[test]
    fn url_param_percent_encoding_left_as_is() {
        let c = one("url_param(q) a%20b");
        assert!(c.eval(&query("q=a%20b")));
        assert!(!one("url_param(q) 'a b'").eval(&query("q=a%20b")));
        assert!(!one("url_param(q) 'a b'").eval(&query("q=a+b")));
        assert!(!one("url_param(q%20x) 1").eval(&query("q x=1")));
        assert!(one("url_param(q%20x) 1").eval(&query("q%20x=1")));
    }

    #[test]
    fn url_param_value_may_contain_equals() {
        assert!(one("url_param(t) a=b").eval(&query("t=a=b")));
    }

    // ---- ssl_fc ----

    #[test]
    fn ssl_fc_boolean() {
        let c = one("ssl_fc");
        assert!(!c.eval(&req()));
        assert!(c.eval(&Req { ssl: true, ..req() }));
        let s = set(&[]);
        let unless = Condition::parse("ssl_fc_missing_typo", &s, true);
        assert!(unless.is_err());
    }

    // ---- predefined ----

    #[test]
    fn predefined_acls() {
        let s = set(&[]);
        let c = |t: &str| Condition::parse(t, &s, false).unwrap();
        assert!(c("TRUE").eval(&req()));
        assert!(!c("FALSE").eval(&req()));
        assert!(c("METH_GET").eval(&Req {
            method: "HEAD",
            ..req()
        }));
        assert!(!c("METH_POST").eval(&req()));
        assert!(c("LOCALHOST").eval(&src("127.0.0.5")));
        assert!(c("LOCALHOST").eval(&src("::1")));
        assert!(!c("LOCALHOST").eval(&src("10.0.0.1")));
        assert!(!c("ssl_fc").eval(&req()));
        assert!(c("ssl_fc").eval(&Req { ssl: true, ..req() }));
        // CONFIG.md's redirect rule: `unless = "ssl_fc"`.
        let unless = Condition::parse("ssl_fc", &s, true).unwrap();
        assert!(unless.eval(&req()));
        assert!(!unless.eval(&Req { ssl: true, ..req() }));
    }

    #[test]
    fn repeated_name_is_or() {
        let defs = vec![
            ("static".to_string(), "path_beg /static".to_string()),
            ("static".to_string(), "path_end .css".to_string()),
        ];
        let s = AclSet::parse(&defs).unwrap();
        let c = Condition::parse("static", &s, false).unwrap();
        assert!(c.eval(&path("/static/x")));
        assert!(c.eval(&path("/a.css")));
        assert!(!c.eval(&path("/a.js")));
    }

    // ---- conditions ----

    fn lan_api() -> Vec<(&'static str, &'static str)> {
        vec![
            ("is_api", "path_beg /api"),
            ("from_lan", "src 10.0.0.0/8"),
            ("is_post", "method POST"),
        ]
    }

    fn r(p: &'static str, ip: &str, m: &'static str) -> Req {
        Req {
            path: p,
            method: m,
            src: Some(ip.parse().unwrap()),
            ..req()
        }
    }

    #[test]
    fn and_is_implicit() {
        let c = cond(&lan_api(), "is_api from_lan");
        assert!(c.eval(&r("/api", "10.0.0.1", "GET")));
        assert!(!c.eval(&r("/api", "8.8.8.8", "GET")));
        assert!(!c.eval(&r("/web", "10.0.0.1", "GET")));
    }

    #[test]
    fn negation() {
        let c = cond(&lan_api(), "is_api !from_lan");
        assert!(c.eval(&r("/api", "8.8.8.8", "GET")));
        assert!(!c.eval(&r("/api", "10.0.0.1", "GET")));
        assert!(!c.eval(&r("/web", "8.8.8.8", "GET")));
        let double = cond(&lan_api(), "!!from_lan");
        assert!(double.eval(&r("/", "10.0.0.1", "GET")));
    }

    #[test]
    fn or_with_pipes_and_word() {
        for text in ["is_api || is_post", "is_api or is_post"] {
            let c = cond(&lan_api(), text);
            assert!(c.eval(&r("/api", "8.8.8.8", "GET")));
            assert!(c.eval(&r("/web", "8.8.8.8", "POST")));
            assert!(!c.eval(&r("/web", "8.8.8.8", "GET")));
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // (is_api && from_lan) || is_post
        let c = cond(&lan_api(), "is_api from_lan || is_post");
        assert!(c.eval(&r("/web", "8.8.8.8", "POST")));
        assert!(c.eval(&r("/api", "10.0.0.1", "GET")));
        assert!(!c.eval(&r("/api", "8.8.8.8", "GET")));
        // is_post || (is_api && !from_lan)
        let c = cond(&lan_api(), "is_post || is_api !from_lan");
        assert!(c.eval(&r("/api", "8.8.8.8", "GET")));
        assert!(!c.eval(&r("/api", "10.0.0.1", "GET")));
        assert!(c.eval(&r("/api", "10.0.0.1", "POST")));
        assert!(!c.eval(&r("/web", "8.8.8.8", "GET")));
    }

    #[test]
    fn unless_negates_the_whole_condition() {
        let s = set(&lan_api());
        let c = Condition::parse("is_api from_lan || is_post", &s, true).unwrap();
        assert!(!c.eval(&r("/web", "8.8.8.8", "POST")));
        assert!(!c.eval(&r("/api", "10.0.0.1", "GET")));
        assert!(c.eval(&r("/api", "8.8.8.8", "GET")));
        let ssl = Condition::parse("ssl_x", &set(&[("ssl_x", "ssl_fc")]), true).unwrap();
        assert!(ssl.eval(&req()));
        assert!(!ssl.eval(&Req { ssl: true, ..req() }));
    }

    #[test]
    fn extra_whitespace_is_fine() {
        let c = cond(&lan_api(), "  is_api\t  from_lan  ||   is_post ");
        assert!(c.eval(&r("/x", "1.1.1.1", "POST")));
        assert_eq!(c.to_string(), "if is_api from_lan || is_post");
    }

    #[test]
    fn display_round_trip() {
        let s = set(&lan_api());
        let c = Condition::parse("is_api !from_lan", &s, true).unwrap();
        assert_eq!(c.to_string(), "unless is_api !from_lan");
    }

    // ---- errors ----

    #[test]
    fn error_unknown_fetch() {
        let e = set_err(&[("x", "path_begin /a")]);
        assert!(
            matches!(&e, AclError::Definition { name, .. } if name == "x"),
            "{e}"
        );
        let s = e.to_string();
        assert!(s.contains("unknown fetch `path_begin`"), "{s}");
        assert!(s.contains("path_beg"), "lists what is allowed: {s}");
    }

    #[test]
    fn error_missing_argument() {
        for def in ["hdr_beg www.", "hdr_beg() www.", "url_param x", "hdr() x"] {
            let e = set_err(&[("h", def)]);
            assert!(e.message().contains("needs an argument"), "{def}: {e}");
            assert!(e.to_string().starts_with("acl `h`"), "{e}");
        }
        let e = set_err(&[("h", "hdr(host www")]);
        assert!(e.message().contains("missing `)`"), "{e}");
    }

    #[test]
    fn error_argument_where_none_is_taken() {
        let e = set_err(&[("p", "path_beg(x) /a")]);
        assert!(e.message().contains("takes no argument"), "{e}");
    }

    #[test]
    fn error_bad_regex() {
        let e = set_err(&[("r", "path_reg ^/(unclosed")]);
        assert!(e.message().contains("invalid regex `^/(unclosed`"), "{e}");
    }

    #[test]
    fn error_bad_cidr() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "2001:db8::/129",
            "nothost",
            "10.0.0.0/x",
            "10.0.0.0/255.0.255.0",
            "::1/255.0.0.0",
            "10.0.0.0/",
        ] {
            let e = set_err(&[("s", &format!("src {bad}"))]);
            assert!(e.message().contains(bad), "{bad}: {e}");
        }
        assert!(set_err(&[("s", "src -i 10.0.0.0/8")])
            .message()
            .contains("-i"));
    }

    #[test]
    fn error_ssl_fc_with_patterns_or_flags() {
        let e = set_err(&[("t", "ssl_fc 1")]);
        assert!(e.message().contains("takes no flags or patterns"), "{e}");
        assert!(set_err(&[("t", "ssl_fc -i")]).message().contains("boolean"));
    }

    #[test]
    fn error_no_patterns_or_empty_definition() {
        assert!(set_err(&[("p", "path_beg")])
            .message()
            .contains("at least one pattern"));
        assert!(set_err(&[("p", "path_beg -i")])
            .message()
            .contains("at least one pattern"));
        assert!(set_err(&[("p", "   ")])
            .message()
            .contains("empty definition"));
    }

    #[test]
    fn error_unknown_flag_and_bad_quote() {
        let e = set_err(&[("p", "path_beg -m beg /a")]);
        assert!(e.message().contains("unsupported flag `-m`"), "{e}");
        assert!(e.message().contains("-i"), "{e}");
        assert!(set_err(&[("p", "path '/a")])
            .message()
            .contains("unterminated"));
    }

    #[test]
    fn error_bad_or_predefined_name() {
        assert!(set_err(&[("a b", "path /")])
            .message()
            .contains("invalid name"));
        assert!(set_err(&[("!x", "path /")])
            .message()
            .contains("invalid name"));
        assert!(set_err(&[("TRUE", "path /")])
            .message()
            .contains("predefined"));
    }

    #[test]
    fn error_unknown_acl_in_condition_with_suggestion() {
        let s = set(&lan_api());
        let e = Condition::parse("is_apj !from_lan", &s, false).unwrap_err();
        assert!(matches!(&e, AclError::Condition { cond, .. } if cond == "is_apj !from_lan"));
        assert!(e.message().contains("unknown acl `is_apj`"), "{e}");
        assert!(e.message().contains("did you mean `is_api`?"), "{e}");
        let e = Condition::parse("is_api !from_lam", &s, false).unwrap_err();
        assert!(e.message().contains("did you mean `from_lan`?"), "{e}");
        let e = Condition::parse("zzzzzz", &s, false).unwrap_err();
        assert!(!e.message().contains("did you mean"), "{e}");
    }

    #[test]
    fn error_empty_condition_and_dangling_or() {
        let s = set(&lan_api());
        for text in ["", "   "] {
            let e = Condition::parse(text, &s, false).unwrap_err();
            assert!(e.message().contains("empty condition"), "{e}");
        }
        for text in [
            "|| is_api",
            "is_api ||",
            "is_api || || is_post",
            "or is_api",
        ] {
            assert!(Condition::parse(text, &s, false).is_err(), "{text}");
        }
        assert!(Condition::parse("!", &s, false)
            .unwrap_err()
            .message()
            .contains("!name"));
        let e = Condition::parse("{ path_beg /a }", &s, false).unwrap_err();
        assert!(e.message().contains("anonymous"), "{e}");
    }

    #[test]
    fn config_example_from_config_md() {
        let s = set(&[
            ("is_api", "path_beg /api /v1"),
            ("is_static", "path_end .css .js .png"),
            ("is_test1", "hdr_beg(host) www.test1.com"),
            ("from_lan", "src 10.0.0.0/8 192.168.0.0/16"),
        ]);
        let deny = Condition::parse("is_api !from_lan", &s, false).unwrap();
        let redirect = Condition::parse("ssl_fc", &s, true).unwrap();
        assert!(redirect.eval(&req()), "plain HTTP is redirected");
        assert!(!redirect.eval(&Req { ssl: true, ..req() }));
        let test1 = Condition::parse("is_test1", &s, false).unwrap();
        let outside = Req {
            path: "/v1/x",
            src: Some("8.8.8.8".parse().unwrap()),
            ..req()
        };
        assert!(deny.eval(&outside));
        let inside = Req {
            src: Some("192.168.3.4".parse().unwrap()),
            ..outside
        };
        assert!(!deny.eval(&inside));
        assert!(test1.eval(&hdr("Host", "www.test1.com:443")));
    }
}
