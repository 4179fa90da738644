//! Load-balancing algorithms (sans-io).
//!
//! A [`Balancer`] chooses the server of each new connection of one backend. It does no I/O,
//! takes no lock and uses no atomics: one instance lives on one shard (a single thread) and
//! is rebuilt with [`Balancer::new`] whenever a new backend-state snapshot arrives (a server
//! goes up or down, is disabled, changes weight), then [`Balancer::inherit_counts`] carries
//! the active-connection counts (and the rotation position) over from the previous one.
//! Everything an algorithm needs is precomputed in `new`; [`Balancer::pick`] never allocates.
//!
//! Algorithms (HAProxy semantics; see `docs/balancing.md`):
//! - `roundrobin`: smooth weighted round robin (nginx): weights 3:1 give `a a b a`.
//! - `static-rr`: a precomputed interleaved weighted cycle, `O(1)` a pick.
//! - `leastconn`: fewest active connections relative to weight, ties taken in turn.
//! - `source`: hash of the client address; `hash_type` map-based (hash modulo the total
//!   weight) or consistent (hash ring); without a client address, round robin.
//! - L7 hashing ([`L7Hash`], built with [`Balancer::new_l7`], or by [`Balancer::new`] from
//!   `Balance::Uri`/`UrlParam`/`Hdr`): `uri` (the request target up to the first `?`,
//!   or whole, optionally cut at a directory depth and a length: [`uri_key`]),
//!   `url_param(name)` (the value of a query-string parameter) and `hdr(name)` (the value of
//!   a request header), with the same `hash_type` choice and the same hashing, ring and
//!   exclusion code as `source`; a request without the key is balanced round robin.
//! - `first`: the first usable server in declaration order.
//!
//! Common rules: a server of weight 0 or not [`ServerSlot::usable`] receives nothing; backup
//! servers are used only when no primary server can be picked (all unusable, or all in
//! `excluded`), with the same algorithm among the backups; a server index in `excluded` is
//! never returned.

mod chash;
mod hash;
mod leastconn;
mod rr;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;

use crate::config::{Balance, HashType, UriHashOptions};

use chash::Ring;
use rr::SmoothWrr;

/// The largest weight a server can have; larger values are treated as this.
pub const MAX_WEIGHT: u32 = 256;

/// What a balancer knows of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSlot {
    /// Stable identity (consistent-hash points are derived from it).
    pub name: String,
    /// `0..=256`; 0 = receives no new traffic.
    pub weight: u32,
    /// Used only when no primary server is usable.
    pub backup: bool,
    /// `up && !disabled` (computed by the runtime).
    pub usable: bool,
}

/// Looks up request headers for `hdr(name)` balancing, without copying them.
pub trait HeaderLookup {
    /// The value of the first header called `name` (ASCII case-insensitive), if any.
    fn header(&self, name: &[u8]) -> Option<&[u8]>;
}

/// `(name, value)` pairs in request order.
impl HeaderLookup for &[(&[u8], &[u8])] {
    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }
}

/// Headers as parsed by `httparse`.
impl HeaderLookup for &[httparse::Header<'_>] {
    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter()
            .find(|h| h.name.as_bytes().eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Per-connection (or, in `mode http`, per-request) facts a balancer may use. Everything is
/// borrowed: building one costs nothing. L4 callers fill `client_ip` only:
/// `PickContext { client_ip, ..Default::default() }`.
#[derive(Clone, Copy, Default)]
pub struct PickContext<'a> {
    /// Address of the client (used by `source`).
    pub client_ip: Option<IpAddr>,
    /// The request target as received, e.g. `/path/x?a=1&b=2` (used by `uri`, which hashes
    /// the part before the first `?` by default, see [`uri_key`], and by `url_param`, which
    /// reads the part after it).
    pub uri: Option<&'a [u8]>,
    /// The request headers (used by `hdr(name)`).
    pub headers: Option<&'a dyn HeaderLookup>,
}

/// The headers are behind a trait object: only say whether there are some.
impl std::fmt::Debug for PickContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PickContext")
            .field("client_ip", &self.client_ip)
            .field("uri", &self.uri.map(String::from_utf8_lossy))
            .field("headers", &self.headers.map(|_| ".."))
            .finish()
    }
}

/// An L7 hashing algorithm (HAProxy's `balance uri`, `url_param <name>`, `hdr(<name>)`).
/// [`Balancer::new`] maps the configuration's `Balance::Uri`, `UrlParam` and `Hdr` to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L7Hash {
    /// Hash of the request target, as received (an absolute-form target is hashed with
    /// its scheme and authority, as HAProxy does without `path-only`, which is not
    /// supported): up to the first `?` unless `whole`, cut by `depth` and `len` (see
    /// [`uri_key`]).
    Uri(UriHashOptions),
    /// Hash of the value of this query-string parameter (case-sensitive name, value up to
    /// the next `&`, not percent-decoded); round robin when absent or empty.
    UrlParam(String),
    /// Hash of the value of this request header (case-insensitive name, first occurrence,
    /// surrounding blanks trimmed); round robin when absent or empty.
    Hdr(String),
}

/// What a hashing algorithm hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Source,
    Uri(UriHashOptions),
    UrlParam,
    Hdr,
}

/// The algorithm, resolved with its hash type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algo {
    RoundRobin,
    StaticRr,
    LeastConn,
    /// Map-based hashing of a key.
    HashMap(Key),
    /// Consistent hashing of a key.
    HashRing(Key),
    First,
}

impl Algo {
    fn new(balance: &Balance, hash_type: HashType) -> Algo {
        match balance {
            Balance::RoundRobin => Algo::RoundRobin,
            Balance::StaticRr => Algo::StaticRr,
            Balance::LeastConn => Algo::LeastConn,
            Balance::Source => Algo::hashing(Key::Source, hash_type),
            Balance::First => Algo::First,
            // Built by `Balancer::new` through `new_l7`.
            Balance::Uri(opts) => Algo::hashing(Key::Uri(*opts), hash_type),
            Balance::UrlParam(_) => Algo::hashing(Key::UrlParam, hash_type),
            Balance::Hdr(_) => Algo::hashing(Key::Hdr, hash_type),
        }
    }

    fn hashing(key: Key, hash_type: HashType) -> Algo {
        match hash_type {
            HashType::MapBased => Algo::HashMap(key),
            HashType::Consistent => Algo::HashRing(key),
        }
    }

    fn key(self) -> Option<Key> {
        match self {
            Algo::HashMap(key) | Algo::HashRing(key) => Some(key),
            _ => None,
        }
    }
}

/// The hash of the key `key` of a request, `None` if the request has no such key (the
/// balancer then falls back to round robin). `name` is the parameter or header name.
#[inline]
fn key_hash(key: Key, name: &[u8], ctx: &PickContext<'_>) -> Option<u64> {
    let bytes = match key {
        Key::Source => return ctx.client_ip.map(hash::hash_ip),
        Key::Uri(opts) => uri_key(ctx.uri?, opts),
        Key::UrlParam => query_param(ctx.uri?, name)?,
        Key::Hdr => trim_blanks(ctx.headers?.header(name)?),
    };
    match (key, bytes.is_empty()) {
        (Key::UrlParam | Key::Hdr, true) => None,
        _ => Some(hash::hash_bytes(bytes)),
    }
}

/// The part of the request target `balance uri [len N] [depth N] [whole]` hashes, as
/// HAProxy's `get_server_uh` computes it:
/// - `len N` (N > 0): only the first N bytes of the target are considered ("the algorithm
///   should only consider that many characters at the beginning of the URI");
/// - then the target is scanned up to the first `?` (excluded), unless `whole`, which
///   hashes the query string too ("the left part of the URI (before the question mark) or
///   the whole URI");
/// - `depth N` (N > 0): "one level is counted for each slash in the request": the key
///   stops before the (N+1)-th `/`, so `/a/b/c?x` and `/a/b/d` both give `/a/b` with
///   `depth 2`. With `whole`, slashes in the query count too, as in HAProxy.
///
/// "If both parameters are specified, the evaluation stops when either is reached."
/// `len` counts bytes (the target is ASCII after parsing). Does not allocate.
#[inline]
pub fn uri_key(uri: &[u8], opts: UriHashOptions) -> &[u8] {
    let uri = match usize::try_from(opts.len) {
        Ok(len) if len > 0 && len < uri.len() => &uri[..len],
        _ => uri,
    };
    // 0 = no depth limit: no slash count reaches it (the count starts at 1).
    let stop_at_slash = if opts.depth == 0 {
        0
    } else {
        u64::from(opts.depth) + 1
    };
    let mut slashes = 0u64;
    for (i, &b) in uri.iter().enumerate() {
        if b == b'/' {
            slashes += 1;
            if slashes == stop_at_slash {
                return &uri[..i];
            }
        } else if b == b'?' && !opts.whole {
            return &uri[..i];
        }
    }
    uri
}

/// The value of the first `name=value` pair of the query string of `uri` (pairs separated by
/// `&`; the value ends at the next `&` or `#`). A pair without `=` does not match.
#[inline]
fn query_param<'u>(uri: &'u [u8], name: &[u8]) -> Option<&'u [u8]> {
    let q = uri.iter().position(|&b| b == b'?')?;
    let query = &uri[q + 1..];
    let query = match query.iter().position(|&b| b == b'#') {
        Some(h) => &query[..h],
        None => query,
    };
    query.split(|&b| b == b'&').find_map(|pair| {
        pair.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(b"="))
    })
}

/// `value` without leading and trailing spaces and tabs.
#[inline]
fn trim_blanks(value: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !blank(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |e| e + 1);
    &value[start..end]
}

/// The servers one pick may choose from: the usable, weighted primaries, or the backups.
#[derive(Debug, Clone, Default)]
struct Group {
    /// Server indexes of the members, in declaration order.
    servers: Vec<usize>,
    /// Weight of each member (1..=MAX_WEIGHT).
    weights: Vec<u32>,
    /// Smooth round-robin state (`roundrobin`, and hashing without a key).
    rr: SmoothWrr,
    /// Interleaved weighted cycle of member positions (`static-rr`, map-based hashing).
    schedule: Vec<u32>,
    /// Next entry of `schedule` (`static-rr`).
    cursor: usize,
    /// Where the next `leastconn` scan starts (round-robin tie break).
    lc_start: usize,
    /// Consistent-hash ring (consistent hashing).
    ring: Ring,
}

impl Group {
    fn new(algo: Algo, slots: &[ServerSlot], backup: bool, points_per_weight: u32) -> Group {
        let mut servers = Vec::new();
        let mut weights = Vec::new();
        for (i, s) in slots.iter().enumerate() {
            if s.backup == backup && s.usable && s.weight > 0 {
                servers.push(i);
                weights.push(s.weight.min(MAX_WEIGHT));
            }
        }
        let schedule = match algo {
            Algo::StaticRr | Algo::HashMap(_) => rr::interleaved_schedule(&weights),
            _ => Vec::new(),
        };
        let ring = match algo {
            Algo::HashRing(_) => Ring::build(
                servers
                    .iter()
                    .zip(&weights)
                    .map(|(&i, &w)| (slots[i].name.as_str(), w)),
                points_per_weight,
            ),
            _ => Ring::default(),
        };
        Group {
            rr: SmoothWrr::new(servers.len()),
            servers,
            weights,
            schedule,
            cursor: 0,
            lc_start: 0,
            ring,
        }
    }

    /// Whether some member is not in `excluded`.
    #[inline]
    fn any_allowed(&self, excluded: &[usize]) -> bool {
        excluded.is_empty() || self.servers.iter().any(|s| !excluded.contains(s))
    }

    /// A server index from this group, or `None`. `key` is the request's hash for hashing
    /// algorithms (`None`: no key, round robin).
    #[inline]
    fn pick(
        &mut self,
        algo: Algo,
        key: Option<u64>,
        active: &[u32],
        excluded: &[usize],
    ) -> Option<usize> {
        if self.servers.is_empty() {
            return None;
        }
        let pos = match algo {
            Algo::RoundRobin => self.round_robin(excluded),
            Algo::StaticRr => self.scheduled(excluded),
            Algo::LeastConn => {
                let pos = leastconn::pick(
                    &self.servers,
                    &self.weights,
                    active,
                    self.lc_start,
                    excluded,
                )?;
                self.lc_start = pos + 1;
                Some(pos)
            }
            Algo::HashMap(_) => match key {
                Some(h) => self.mapped(h, excluded),
                None => self.round_robin(excluded),
            },
            Algo::HashRing(_) => match key {
                Some(h) if self.any_allowed(excluded) => {
                    self.ring.lookup(h, &self.servers, excluded)
                }
                Some(_) => None,
                None => self.round_robin(excluded),
            },
            Algo::First => self.servers.iter().position(|s| !excluded.contains(s)),
        }?;
        Some(self.servers[pos])
    }

    #[inline]
    fn round_robin(&mut self, excluded: &[usize]) -> Option<usize> {
        self.rr.next(&self.servers, &self.weights, excluded)
    }

    /// Next entry of the static schedule that is not excluded.
    #[inline]
    fn scheduled(&mut self, excluded: &[usize]) -> Option<usize> {
        let len = self.schedule.len();
        if len == 0 || !self.any_allowed(excluded) {
            return None;
        }
        loop {
            let pos = self.schedule[self.cursor] as usize;
            self.cursor += 1;
            if self.cursor == len {
                self.cursor = 0;
            }
            if !excluded.contains(&self.servers[pos]) {
                return Some(pos);
            }
        }
    }

    /// Map-based hashing: the schedule entry `hash mod len`, walking forward past excluded
    /// members.
    #[inline]
    fn mapped(&self, hash: u64, excluded: &[usize]) -> Option<usize> {
        let len = self.schedule.len();
        if len == 0 || !self.any_allowed(excluded) {
            return None;
        }
        let start = hash::reduce(hash, len);
        self.schedule[start..]
            .iter()
            .chain(&self.schedule[..start])
            .map(|&p| p as usize)
            .find(|&p| !excluded.contains(&self.servers[p]))
    }

    /// Takes over the rotation position of `prev` (the same group of the previous
    /// balancer); `prev_index[i]` is the previous index of member `i`'s server, if any.
    fn inherit_rotation(&mut self, prev: &Group, prev_pos: &[u32], prev_index: &[Option<usize>]) {
        let inherited = self.servers.iter().map(|&s| {
            prev_index[s]
                .map(|j| prev_pos[j])
                .filter(|&p| p != NOT_MEMBER && (p as usize) < prev.servers.len())
                .map_or(0, |p| prev.rr.current(p as usize))
        });
        let inherited: Vec<i64> = inherited.collect();
        self.rr.inherit(inherited.into_iter());
        if !self.schedule.is_empty() {
            self.cursor = prev.cursor % self.schedule.len();
        }
        if !self.servers.is_empty() {
            self.lc_start = prev.lc_start % self.servers.len();
        }
    }
}

/// `member_pos` value of a server that is in no group.
const NOT_MEMBER: u32 = u32::MAX;

/// The load balancer of one backend on one shard.
#[derive(Debug, Clone)]
pub struct Balancer {
    algo: Algo,
    /// Parameter name (`url_param`) or header name (`hdr`); empty otherwise.
    key_name: Box<[u8]>,
    slots: Vec<ServerSlot>,
    /// Active connections per server index.
    active: Vec<u32>,
    primary: Group,
    backup: Group,
    /// Position of each server in its group (`NOT_MEMBER` if it can receive nothing).
    member_pos: Vec<u32>,
}

impl Balancer {
    /// Builds the balancer of a backend with servers `servers` (declaration order; the
    /// indexes [`Balancer::pick`] returns are indexes into this slice). `hash_type` matters
    /// only for hashing algorithms. All per-pick data (schedules, hash ring) is computed here.
    pub fn new(balance: &Balance, hash_type: HashType, servers: &[ServerSlot]) -> Balancer {
        match balance {
            Balance::Uri(opts) => Balancer::new_l7(&L7Hash::Uri(*opts), hash_type, servers),
            Balance::UrlParam(name) => {
                Balancer::new_l7(&L7Hash::UrlParam(name.clone()), hash_type, servers)
            }
            Balance::Hdr(name) => Balancer::new_l7(&L7Hash::Hdr(name.clone()), hash_type, servers),
            _ => Balancer::build(Algo::new(balance, hash_type), Box::default(), servers),
        }
    }

    /// Like [`Balancer::new`], for an L7 hashing algorithm (requests then carry the URI or
    /// headers in their [`PickContext`]).
    pub fn new_l7(l7: &L7Hash, hash_type: HashType, servers: &[ServerSlot]) -> Balancer {
        let (key, name) = match l7 {
            L7Hash::Uri(opts) => (Key::Uri(*opts), &[][..]),
            L7Hash::UrlParam(name) => (Key::UrlParam, name.as_bytes()),
            L7Hash::Hdr(name) => (Key::Hdr, name.as_bytes()),
        };
        Balancer::build(Algo::hashing(key, hash_type), name.into(), servers)
    }

    fn build(algo: Algo, key_name: Box<[u8]>, servers: &[ServerSlot]) -> Balancer {
        let points_per_weight = if matches!(algo, Algo::HashRing(_)) {
            // Every declared server counts, usable or not: health changes never re-scale
            // the ring (which would move keys between servers that stayed up).
            let declared: u64 = servers
                .iter()
                .map(|s| u64::from(s.weight.min(MAX_WEIGHT)))
                .sum();
            chash::points_per_weight(declared)
        } else {
            0
        };
        let primary = Group::new(algo, servers, false, points_per_weight);
        let backup = Group::new(algo, servers, true, points_per_weight);
        let mut member_pos = vec![NOT_MEMBER; servers.len()];
        for group in [&primary, &backup] {
            for (pos, &s) in group.servers.iter().enumerate() {
                member_pos[s] = pos as u32;
            }
        }
        Balancer {
            algo,
            key_name,
            slots: servers.to_vec(),
            active: vec![0; servers.len()],
            primary,
            backup,
            member_pos,
        }
    }

    /// Chooses a server index (into the `servers` given to [`Balancer::new`]). `excluded`
    /// lists indexes already tried for this connection (retries, redispatch): none of them is
    /// returned. Backup servers are considered only when no primary server can be picked.
    /// `None` = nothing usable. Does not allocate.
    #[inline]
    pub fn pick(&mut self, ctx: &PickContext<'_>, excluded: &[usize]) -> Option<usize> {
        let algo = self.algo;
        let key = algo.key().and_then(|k| key_hash(k, &self.key_name, ctx));
        let active = &self.active;
        self.primary
            .pick(algo, key, active, excluded)
            .or_else(|| self.backup.pick(algo, key, active, excluded))
    }

    /// Records that a connection to `server` was established (for `leastconn`; counted for
    /// every algorithm). An index out of range is ignored.
    #[inline]
    pub fn connection_started(&mut self, server: usize) {
        if let Some(n) = self.active.get_mut(server) {
            *n = n.saturating_add(1);
        }
    }

    /// Records that a connection to `server` ended. Never goes below 0; an index out of range
    /// is ignored.
    #[inline]
    pub fn connection_ended(&mut self, server: usize) {
        if let Some(n) = self.active.get_mut(server) {
            *n = n.saturating_sub(1);
        }
    }

    /// Carries the active-connection counts over from `previous` (the balancer this one
    /// replaces after a snapshot change), matching servers by name; a server new in this
    /// balancer starts at 0. The rotation position (round-robin state, static schedule
    /// cursor, leastconn tie-break) is carried over too, so that frequent rebuilds do not
    /// keep restarting the rotation at the first server.
    pub fn inherit_counts(&mut self, previous: &Balancer) {
        let by_name: HashMap<&str, usize> = previous
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let prev_index: Vec<Option<usize>> = self
            .slots
            .iter()
            .map(|s| by_name.get(s.name.as_str()).copied())
            .collect();
        for (count, prev) in self.active.iter_mut().zip(&prev_index) {
            *count = prev.map_or(0, |j| previous.active[j]);
        }
        // Rotation state only makes sense between balancers of the same algorithm; a server
        // that moved between primary and backup starts afresh (its previous position was in
        // the other group, which `Group::inherit_rotation` cannot tell apart, so filter here).
        if self.algo == previous.algo && self.key_name == previous.key_name {
            let same_group = |backup: bool| -> Vec<Option<usize>> {
                prev_index
                    .iter()
                    .map(|p| p.filter(|&j| previous.slots[j].backup == backup))
                    .collect()
            };
            self.primary.inherit_rotation(
                &previous.primary,
                &previous.member_pos,
                &same_group(false),
            );
            self.backup
                .inherit_rotation(&previous.backup, &previous.member_pos, &same_group(true));
        }
    }

    /// Active connections to `server` recorded on this balancer (0 for an unknown index).
    pub fn active_connections(&self, server: usize) -> u32 {
        self.active.get(server).copied().unwrap_or(0)
    }

    /// The servers this balancer was built with.
    pub fn servers(&self) -> &[ServerSlot] {
        &self.slots
    }

    /// Index of the server called `name`, if any (linear scan; for rebuild-time mapping).
    pub fn server_index(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// Whether some server (primary or backup) can receive traffic at all.
    pub fn has_usable_server(&self) -> bool {
        !self.primary.servers.is_empty() || !self.backup.servers.is_empty()
    }
}
