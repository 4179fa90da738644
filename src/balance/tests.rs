//! Unit tests of the balancers. Deterministic: a small PRNG (splitmix64) with fixed seeds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

// ---------------------------------------------------------------- helpers

/// splitmix64: tiny, deterministic, good enough to make test inputs.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    fn ipv4(&mut self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self.next_u64() as u32))
    }
    fn ipv6(&mut self) -> IpAddr {
        let hi = u128::from(self.next_u64()) << 64;
        IpAddr::V6(Ipv6Addr::from(hi | u128::from(self.next_u64())))
    }
}

fn slot(name: &str, weight: u32) -> ServerSlot {
    ServerSlot {
        name: name.to_string(),
        weight,
        backup: false,
        usable: true,
    }
}

fn backup(name: &str, weight: u32) -> ServerSlot {
    ServerSlot {
        backup: true,
        ..slot(name, weight)
    }
}

/// Usable primaries `s0`, `s1`, ... with these weights.
fn slots(weights: &[u32]) -> Vec<ServerSlot> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| slot(&format!("s{i}"), w))
        .collect()
}

fn no_ctx() -> PickContext<'static> {
    PickContext::default()
}

fn ip_ctx(ip: IpAddr) -> PickContext<'static> {
    PickContext {
        client_ip: Some(ip),
        ..Default::default()
    }
}

/// An owned HTTP request head an L7 [`PickContext`] borrows from.
#[derive(Debug, Clone, Default)]
struct Req {
    uri: String,
    headers: Vec<(String, String)>,
}

impl HeaderLookup for Req {
    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    }
}

impl Req {
    fn new(uri: &str, headers: &[(&str, &str)]) -> Req {
        Req {
            uri: uri.to_string(),
            headers: headers
                .iter()
                .map(|&(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// A request whose `l7` key is `key` (with unrelated noise around it).
    fn keyed(l7: &L7Hash, key: &str) -> Req {
        match l7 {
            L7Hash::Uri(_) => Req::new(&format!("/{key}/index.html"), &[("Host", "a.test")]),
            L7Hash::UrlParam(name) => Req::new(
                &format!("/app?lang=en&{name}={key}&page=2"),
                &[("Host", "a.test")],
            ),
            L7Hash::Hdr(name) => Req::new("/", &[("Accept", "*/*"), (name, key)]),
        }
    }

    /// A request without the `l7` key.
    fn keyless(l7: &L7Hash) -> Req {
        match l7 {
            L7Hash::Uri(_) => Req::default(),
            L7Hash::UrlParam(_) => Req::new("/app?lang=en", &[("Host", "a.test")]),
            L7Hash::Hdr(_) => Req::new("/", &[("Accept", "*/*")]),
        }
    }

    fn ctx(&self) -> PickContext<'_> {
        PickContext {
            client_ip: None,
            uri: (!self.uri.is_empty()).then_some(self.uri.as_bytes()),
            headers: Some(self),
        }
    }
}

/// The three L7 hashing algorithms, as issue 3 configures them.
fn l7_algos() -> [L7Hash; 3] {
    [
        L7Hash::Uri(UriHashOptions::default()),
        L7Hash::UrlParam("userid".to_string()),
        L7Hash::Hdr("host".to_string()),
    ]
}

fn random_key(rng: &mut Rng) -> String {
    format!("k{:x}", rng.next_u64())
}

/// Every algorithm, with both hash types for `source`.
const ALL: [(Balance, HashType); 6] = [
    (Balance::RoundRobin, HashType::MapBased),
    (Balance::StaticRr, HashType::MapBased),
    (Balance::LeastConn, HashType::MapBased),
    (Balance::Source, HashType::MapBased),
    (Balance::Source, HashType::Consistent),
    (Balance::First, HashType::MapBased),
];

fn rr(servers: &[ServerSlot]) -> Balancer {
    Balancer::new(&Balance::RoundRobin, HashType::MapBased, servers)
}

fn static_rr(servers: &[ServerSlot]) -> Balancer {
    Balancer::new(&Balance::StaticRr, HashType::MapBased, servers)
}

fn leastconn(servers: &[ServerSlot]) -> Balancer {
    Balancer::new(&Balance::LeastConn, HashType::MapBased, servers)
}

fn source(hash_type: HashType, servers: &[ServerSlot]) -> Balancer {
    Balancer::new(&Balance::Source, hash_type, servers)
}

/// An algorithm of any layer with its hash type, for the rules common to all.
#[derive(Debug, Clone)]
enum Algorithm {
    L4(Balance, HashType),
    L7(L7Hash, HashType),
}

impl Algorithm {
    fn build(&self, servers: &[ServerSlot]) -> Balancer {
        match self {
            Algorithm::L4(balance, hash_type) => Balancer::new(balance, *hash_type, servers),
            Algorithm::L7(l7, hash_type) => Balancer::new_l7(l7, *hash_type, servers),
        }
    }

    /// A pick for a random client (L4) or a random request, one in eight without the key
    /// (L7).
    fn pick(&self, b: &mut Balancer, rng: &mut Rng, excluded: &[usize]) -> Option<usize> {
        match self {
            Algorithm::L4(..) => pick_with(b, rng, excluded),
            Algorithm::L7(l7, _) => {
                let req = if rng.below(8) == 0 {
                    Req::keyless(l7)
                } else {
                    Req::keyed(l7, &random_key(rng))
                };
                b.pick(&req.ctx(), excluded)
            }
        }
    }
}

/// Every L4 algorithm (both hash types for `source`) and every L7 one with both hash types.
fn every_algorithm() -> Vec<Algorithm> {
    let mut all: Vec<Algorithm> = ALL
        .into_iter()
        .map(|(balance, hash_type)| Algorithm::L4(balance, hash_type))
        .collect();
    for l7 in l7_algos() {
        for hash_type in [HashType::MapBased, HashType::Consistent] {
            all.push(Algorithm::L7(l7.clone(), hash_type));
        }
    }
    all
}

/// `n` picks without context or exclusion.
fn sequence(b: &mut Balancer, n: usize) -> Vec<usize> {
    (0..n).map(|_| b.pick(&no_ctx(), &[]).unwrap()).collect()
}

/// How many times each server is picked in `n` picks.
fn histogram(b: &mut Balancer, servers: usize, n: usize) -> Vec<usize> {
    let mut h = vec![0; servers];
    for s in sequence(b, n) {
        h[s] += 1;
    }
    h
}

/// A context generator per algorithm: hashing balancers get random IPv4 clients.
fn pick_with(b: &mut Balancer, rng: &mut Rng, excluded: &[usize]) -> Option<usize> {
    let ctx = ip_ctx(rng.ipv4());
    b.pick(&ctx, excluded)
}

// ---------------------------------------------------------------- hashing

#[test]
fn hash_is_pinned() {
    // Golden values: changing the hash re-maps every `source` client. Change them only on
    // purpose (and say so in the release notes).
    assert_eq!(hash::hash_bytes(b""), 0xefd0_1f60_ba99_2926);
    assert_eq!(
        hash::hash_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        0x8039_3182_6a22_88ea
    );
    assert_eq!(hash::ring_point("web1", 0), 0xd824_67f4_e858_dd6a);
}

#[test]
fn hash_of_mapped_ipv6_is_the_ipv4_hash() {
    let v4 = Ipv4Addr::new(10, 1, 2, 3);
    assert_eq!(
        hash::hash_ip(IpAddr::V4(v4)),
        hash::hash_ip(IpAddr::V6(v4.to_ipv6_mapped()))
    );
    // ...but an IPv4-compatible or any other IPv6 address is its own key.
    assert_ne!(
        hash::hash_ip(IpAddr::V4(v4)),
        hash::hash_ip(IpAddr::V6(v4.to_ipv6_compatible()))
    );
}

#[test]
fn hash_spreads_neighbouring_addresses() {
    // Addresses differing only in the last octet must spread over buckets like random ones.
    let mut buckets = [0usize; 16];
    for last in 0..=255u8 {
        for third in 0..16u8 {
            let h = hash::hash_ip(IpAddr::V4(Ipv4Addr::new(10, 0, third, last)));
            buckets[hash::reduce(h, 16)] += 1;
        }
    }
    // 4096 keys, 256 expected a bucket; binomial sd ~15.5.
    for (i, &n) in buckets.iter().enumerate() {
        assert!((196..=316).contains(&n), "bucket {i}: {n} ({buckets:?})");
    }
}

#[test]
fn reduce_covers_the_range() {
    assert_eq!(hash::reduce(0, 7), 0);
    assert_eq!(hash::reduce(u64::MAX, 7), 6);
    assert_eq!(hash::reduce(u64::MAX / 2, 2), 0);
    assert_eq!(hash::reduce(u64::MAX / 2 + 1, 2), 1);
}

// ---------------------------------------------------------------- schedules

#[test]
fn schedule_counts_and_gcd() {
    assert_eq!(rr::interleaved_schedule(&[3, 1]), vec![0, 0, 1, 0]);
    assert_eq!(
        rr::interleaved_schedule(&[5, 1, 1]),
        vec![0, 0, 1, 0, 2, 0, 0]
    );
    // gcd 4 reduces 8:4 to 2:1.
    assert_eq!(rr::interleaved_schedule(&[8, 4]), vec![0, 1, 0]);
    assert_eq!(rr::interleaved_schedule(&[2, 2, 2]), vec![0, 1, 2]);
    assert!(rr::interleaved_schedule(&[]).is_empty());
    assert!(rr::interleaved_schedule(&[0, 0]).is_empty());

    let mut rng = Rng(7);
    for _ in 0..50 {
        let n = 1 + rng.below(12) as usize;
        let weights: Vec<u32> = (0..n).map(|_| 1 + rng.below(256) as u32).collect();
        for schedule in [
            rr::interleaved_schedule(&weights),
            rr::deadline_schedule(&weights),
        ] {
            let total: u32 = weights.iter().sum();
            let ratio = total as usize / schedule.len();
            for (i, &w) in weights.iter().enumerate() {
                let count = schedule.iter().filter(|&&p| p as usize == i).count();
                assert_eq!(count * ratio, w as usize, "weights {weights:?}");
            }
        }
    }
}

#[test]
fn deadline_schedule_interleaves() {
    assert_eq!(rr::deadline_schedule(&[3, 1]), vec![0, 0, 1, 0]);
    assert_eq!(rr::deadline_schedule(&[1, 1, 1]), vec![0, 1, 2]);
    // A member with half the weight never appears twice in a row.
    let s = rr::deadline_schedule(&[4, 2, 2]);
    assert_eq!(s.len(), 8);
    for w in s.windows(2) {
        assert!(!(w[0] == w[1] && (w[0] == 1 || w[0] == 2)), "{s:?}");
    }
}

#[test]
fn inherited_rotation_is_recentred() {
    let mut w = rr::SmoothWrr::new(3);
    w.inherit([5, -1, 3].into_iter());
    let values: Vec<i64> = (0..3).map(|i| w.current(i)).collect();
    assert_eq!(values.iter().sum::<i64>(), 0, "{values:?}");
    // Relative order kept (up to the remainder taken off the first member).
    assert_eq!(values, vec![2, -3, 1]);
    let mut w = rr::SmoothWrr::new(2);
    w.inherit([-7, 0].into_iter());
    assert_eq!((w.current(0), w.current(1)), (-4, 4));
}

// ---------------------------------------------------------------- roundrobin

#[test]
fn roundrobin_is_smooth() {
    let mut b = rr(&slots(&[3, 1]));
    assert_eq!(sequence(&mut b, 8), vec![0, 0, 1, 0, 0, 0, 1, 0]);
    // nginx's reference example.
    let mut b = rr(&slots(&[5, 1, 1]));
    assert_eq!(sequence(&mut b, 7), vec![0, 0, 1, 0, 2, 0, 0]);
    // Equal weights: plain rotation.
    let mut b = rr(&slots(&[2, 2, 2]));
    assert_eq!(sequence(&mut b, 6), vec![0, 1, 2, 0, 1, 2]);
}

#[test]
fn roundrobin_distribution_matches_weights() {
    let mut b = rr(&slots(&[5, 3, 1, 1]));
    assert_eq!(histogram(&mut b, 4, 10_000), vec![5000, 3000, 1000, 1000]);

    let mut rng = Rng(11);
    for _ in 0..20 {
        let n = 2 + rng.below(10) as usize;
        let weights: Vec<u32> = (0..n).map(|_| 1 + rng.below(256) as u32).collect();
        let total: u32 = weights.iter().sum();
        let mut b = rr(&slots(&weights));
        // Exact over whole periods...
        let h = histogram(&mut b, n, total as usize * 3);
        for (i, &w) in weights.iter().enumerate() {
            assert_eq!(h[i], 3 * w as usize, "weights {weights:?}");
        }
        // ...and within one pick of the ideal share at any point.
        let mut b = rr(&slots(&weights));
        let mut h = vec![0usize; n];
        for k in 1..=10_000usize {
            h[b.pick(&no_ctx(), &[]).unwrap()] += 1;
            if k % 97 == 0 || k == 10_000 {
                for (i, &w) in weights.iter().enumerate() {
                    let ideal = k as f64 * f64::from(w) / f64::from(total);
                    assert!(
                        (h[i] as f64 - ideal).abs() <= 1.0,
                        "weights {weights:?} after {k}: server {i} has {}, ideal {ideal}",
                        h[i]
                    );
                }
            }
        }
    }
}

#[test]
fn roundrobin_exclusion_keeps_the_rest_fair() {
    let mut b = rr(&slots(&[1, 1, 1]));
    for _ in 0..30 {
        let s = b.pick(&no_ctx(), &[1]).unwrap();
        assert_ne!(s, 1);
    }
    let h = histogram(&mut b, 3, 3000);
    assert_eq!(h, vec![1000, 1000, 1000]);
}

// ---------------------------------------------------------------- static-rr

#[test]
fn static_rr_follows_the_schedule() {
    let mut b = static_rr(&slots(&[3, 1]));
    assert_eq!(sequence(&mut b, 8), vec![0, 0, 1, 0, 0, 0, 1, 0]);
    let mut b = static_rr(&slots(&[5, 3, 1, 1]));
    assert_eq!(histogram(&mut b, 4, 10_000), vec![5000, 3000, 1000, 1000]);

    let mut rng = Rng(12);
    for _ in 0..20 {
        let n = 2 + rng.below(10) as usize;
        let weights: Vec<u32> = (0..n).map(|_| 1 + rng.below(256) as u32).collect();
        let total: u32 = weights.iter().sum();
        let mut b = static_rr(&slots(&weights));
        let h = histogram(&mut b, n, 10_000);
        for (i, &w) in weights.iter().enumerate() {
            let ideal = 10_000.0 * f64::from(w) / f64::from(total);
            assert!(
                (h[i] as f64 - ideal).abs() <= 1.0,
                "weights {weights:?}: server {i} has {}, ideal {ideal}",
                h[i]
            );
        }
    }
}

#[test]
fn static_rr_skips_excluded_entries() {
    let mut b = static_rr(&slots(&[2, 1, 1]));
    // Schedule a b a c: excluding a gives b then c, alternating.
    let picks: Vec<usize> = (0..6).map(|_| b.pick(&no_ctx(), &[0]).unwrap()).collect();
    assert_eq!(picks, vec![1, 2, 1, 2, 1, 2]);
    assert_eq!(b.pick(&no_ctx(), &[0, 1, 2]), None);
    // Still cycling fine afterwards.
    assert_eq!(histogram(&mut b, 3, 400), vec![200, 100, 100]);
}

// ---------------------------------------------------------------- leastconn

#[test]
fn leastconn_picks_the_least_loaded() {
    let mut b = leastconn(&slots(&[1, 1, 1]));
    for _ in 0..5 {
        b.connection_started(0);
    }
    b.connection_started(1);
    b.connection_started(1);
    b.connection_started(2);
    assert_eq!(b.pick(&no_ctx(), &[]), Some(2));
    b.connection_started(2);
    b.connection_started(2);
    // 5, 2, 3 → 1.
    assert_eq!(b.pick(&no_ctx(), &[]), Some(1));
    // Excluding the least loaded gives the next least loaded.
    assert_eq!(b.pick(&no_ctx(), &[1]), Some(2));
    for _ in 0..5 {
        b.connection_ended(0);
    }
    assert_eq!(b.active_connections(0), 0);
    assert_eq!(b.pick(&no_ctx(), &[]), Some(0));
    // Ending more than started never underflows.
    b.connection_ended(0);
    assert_eq!(b.active_connections(0), 0);
}

#[test]
fn leastconn_respects_weights() {
    // Connections that stay open: the counts end up proportional to the weights.
    let weights = [1, 2, 3, 4];
    let mut b = leastconn(&slots(&weights));
    for _ in 0..1000 {
        let s = b.pick(&no_ctx(), &[]).unwrap();
        b.connection_started(s);
    }
    let counts: Vec<u32> = (0..4).map(|i| b.active_connections(i)).collect();
    assert_eq!(counts, vec![100, 200, 300, 400]);

    // A server with twice the weight takes over when it carries less than twice the load.
    let mut b = leastconn(&slots(&[2, 1]));
    for _ in 0..4 {
        b.connection_started(0);
    }
    b.connection_started(1);
    // (4+1)/2 = 2.5 > (1+1)/1 = 2 → the lighter one.
    assert_eq!(b.pick(&no_ctx(), &[]), Some(1));
    // Two connections to the heavy one end: (2+1)/2 = 1.5 < 2 → the heavy one again.
    b.connection_ended(0);
    b.connection_ended(0);
    assert_eq!(b.pick(&no_ctx(), &[]), Some(0));

    // The key is (active + 1) / weight, as in HAProxy: the heavier server takes the first
    // connection, and a 4× server takes its second one before a 1× server gets its first.
    let mut b = leastconn(&slots(&[1, 4]));
    assert_eq!(b.pick(&no_ctx(), &[]), Some(1));
    b.connection_started(1);
    assert_eq!(b.pick(&no_ctx(), &[]), Some(1));
}

#[test]
fn leastconn_ties_rotate() {
    // Short connections (each ends before the next pick): all servers are always tied and
    // must share evenly, not all go to the first one.
    let mut b = leastconn(&slots(&[1, 1, 1, 1]));
    let mut h = [0usize; 4];
    for _ in 0..1000 {
        let s = b.pick(&no_ctx(), &[]).unwrap();
        b.connection_started(s);
        b.connection_ended(s);
        h[s] += 1;
    }
    assert_eq!(h, [250; 4]);
    // Picks with no connection recorded in between (a burst waiting on connect) spread too.
    let mut b = leastconn(&slots(&[1, 1, 1]));
    assert_eq!(sequence(&mut b, 6), vec![0, 1, 2, 0, 1, 2]);
}

// ---------------------------------------------------------------- source

#[test]
fn source_same_ip_same_server() {
    let mut rng = Rng(21);
    for hash_type in [HashType::MapBased, HashType::Consistent] {
        let servers = slots(&[1, 2, 3, 1, 5]);
        let mut a = source(hash_type, &servers);
        // Another shard: an independent instance must agree.
        let mut b = source(hash_type, &servers);
        for _ in 0..2000 {
            let ip = if rng.below(2) == 0 {
                rng.ipv4()
            } else {
                rng.ipv6()
            };
            let first = a.pick(&ip_ctx(ip), &[]).unwrap();
            assert_eq!(a.pick(&ip_ctx(ip), &[]), Some(first));
            assert_eq!(a.pick(&ip_ctx(ip), &[]), Some(first));
            assert_eq!(b.pick(&ip_ctx(ip), &[]), Some(first));
        }
        // An IPv4 client seen through a dual-stack listener keeps its server.
        let v4 = Ipv4Addr::new(198, 51, 100, 7);
        assert_eq!(
            a.pick(&ip_ctx(IpAddr::V4(v4)), &[]),
            a.pick(&ip_ctx(IpAddr::V6(v4.to_ipv6_mapped())), &[])
        );
    }
}

#[test]
fn source_map_based_spreads_by_weight() {
    let weights = [1usize, 2, 3, 4];
    let mut b = source(HashType::MapBased, &slots(&[1, 2, 3, 4]));
    let mut rng = Rng(22);
    let n = 40_000;
    let mut h = [0usize; 4];
    for _ in 0..n {
        h[pick_with(&mut b, &mut rng, &[]).unwrap()] += 1;
    }
    for (i, &w) in weights.iter().enumerate() {
        let expected = n * w / 10;
        let tolerance = expected / 20; // 5 %
        assert!(
            h[i].abs_diff(expected) <= tolerance,
            "server {i}: {} (expected {expected}) {h:?}",
            h[i]
        );
    }
}

#[test]
fn source_map_based_exclusion_walks_on() {
    let mut b = source(HashType::MapBased, &slots(&[1, 1, 1]));
    let mut rng = Rng(23);
    let mut h = [0usize; 3];
    for _ in 0..3000 {
        let ip = rng.ipv4();
        let first = b.pick(&ip_ctx(ip), &[]).unwrap();
        let second = b.pick(&ip_ctx(ip), &[first]).unwrap();
        assert_ne!(second, first);
        // Deterministic too.
        assert_eq!(b.pick(&ip_ctx(ip), &[first]), Some(second));
        h[second] += 1;
        assert_eq!(b.pick(&ip_ctx(ip), &[0, 1, 2]), None);
    }
    assert!(h.iter().all(|&n| n > 700), "{h:?}");
}

#[test]
fn source_without_client_ip_is_round_robin() {
    for hash_type in [HashType::MapBased, HashType::Consistent] {
        let mut b = source(hash_type, &slots(&[3, 1]));
        assert_eq!(sequence(&mut b, 8), vec![0, 0, 1, 0, 0, 0, 1, 0]);
        assert_eq!(b.pick(&no_ctx(), &[0]), Some(1));
    }
}

/// Owner of each IP under balancer `b`.
fn owners(b: &mut Balancer, ips: &[IpAddr]) -> Vec<usize> {
    ips.iter()
        .map(|&ip| b.pick(&ip_ctx(ip), &[]).unwrap())
        .collect()
}

fn random_ips(seed: u64, n: usize) -> Vec<IpAddr> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| if i % 4 == 3 { rng.ipv6() } else { rng.ipv4() })
        .collect()
}

/// Takes each server of `servers` off in turn and checks that only its keys move, both when
/// it goes down (same list, `usable = false`) and, if `also_deleted`, when it is deleted from
/// the list (indexes shift, names stay).
fn check_consistent_removal(servers: &[ServerSlot], ips: &[IpAddr], also_deleted: bool) {
    check_removal(
        servers,
        also_deleted,
        &|s| source(HashType::Consistent, s),
        &|b| owners(b, ips),
    );
}

/// [`check_consistent_removal`] for any consistent balancer: `build` makes one from a server
/// list, `owners_of` gives the owner of each of a fixed list of keys.
fn check_removal(
    servers: &[ServerSlot],
    also_deleted: bool,
    build: &dyn Fn(&[ServerSlot]) -> Balancer,
    owners_of: &dyn Fn(&mut Balancer) -> Vec<usize>,
) {
    let n = servers.len();
    let before = owners_of(&mut build(servers));
    for removed in 0..n {
        let mut down = servers.to_vec();
        down[removed].usable = false;
        let after = owners_of(&mut build(&down));
        if also_deleted {
            let kept: Vec<ServerSlot> = servers
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != removed)
                .map(|(_, s)| s.clone())
                .collect();
            let after_deleted = owners_of(&mut build(&kept));
            for k in 0..before.len() {
                assert_eq!(
                    kept[after_deleted[k]].name, servers[after[k]].name,
                    "key {k}"
                );
            }
        }
        let mut moved_to = vec![0usize; n];
        for k in 0..before.len() {
            if before[k] == removed {
                assert_ne!(after[k], removed);
                moved_to[after[k]] += 1;
            } else {
                assert_eq!(
                    after[k], before[k],
                    "key {k} moved off a server that stayed"
                );
            }
        }
        let moved: usize = moved_to.iter().sum();
        let owned = before.iter().filter(|&&o| o == removed).count();
        assert_eq!(moved, owned);
        assert!(
            moved > before.len() / (3 * n),
            "removed {removed}: only {moved} keys"
        );
        for (s, &m) in moved_to.iter().enumerate() {
            if s != removed && servers[s].usable && servers[s].weight > 0 {
                // Every other server takes a real share of the moved keys.
                assert!(m * 4 * n >= moved, "removed {removed}: {moved_to:?}");
            }
        }
    }
    // Nothing else changed: the same list gives the same owners.
    assert_eq!(owners_of(&mut build(servers)), before);
}

#[test]
fn consistent_removal_moves_only_the_removed_servers_keys() {
    let servers = slots(&[1, 1, 1, 1, 1]);
    let ips = random_ips(31, 10_000);
    let before = owners(&mut source(HashType::Consistent, &servers), &ips);
    // Balanced to begin with: 2000 each, ±25 %.
    for s in 0..5 {
        let n = before.iter().filter(|&&o| o == s).count();
        assert!((1500..=2500).contains(&n), "server {s}: {n}");
    }
    check_consistent_removal(&servers, &ips, true);
}

#[test]
fn consistent_removal_with_heavy_weights() {
    // Weights large enough that the ring uses fewer points per unit of weight: the scale
    // comes from every declared server, so a server going down still moves only its keys.
    let servers = slots(&[256, 256, 200, 256, 100]);
    assert!(chash::points_per_weight(1068) < chash::MAX_POINTS_PER_WEIGHT);
    check_consistent_removal(&servers, &random_ips(35, 10_000), false);
}

#[test]
fn consistent_exclusion_equals_removal() {
    // Excluding a server walks to the next distinct server on the ring: exactly where the
    // key would go if that server were down.
    let servers = slots(&[1, 2, 1, 3, 1]);
    let ips = random_ips(32, 3000);
    let mut full = source(HashType::Consistent, &servers);
    for x in 0..servers.len() {
        let mut down = servers.clone();
        down[x].usable = false;
        let mut without = source(HashType::Consistent, &down);
        for &ip in &ips {
            let got = full.pick(&ip_ctx(ip), &[x]).unwrap();
            assert_ne!(got, x);
            assert_eq!(Some(got), without.pick(&ip_ctx(ip), &[]));
        }
    }
    // Two exclusions likewise.
    let mut down = servers.clone();
    down[1].usable = false;
    down[3].usable = false;
    let mut without = source(HashType::Consistent, &down);
    for &ip in &ips {
        assert_eq!(
            full.pick(&ip_ctx(ip), &[3, 1]),
            without.pick(&ip_ctx(ip), &[])
        );
    }
    let all: Vec<usize> = (0..servers.len()).collect();
    assert_eq!(full.pick(&ip_ctx(ips[0]), &all), None);
}

#[test]
fn consistent_spreads_by_weight() {
    let weights = [1usize, 1, 2, 4];
    let mut b = source(HashType::Consistent, &slots(&[1, 1, 2, 4]));
    let ips = random_ips(33, 40_000);
    let mut h = [0usize; 4];
    for o in owners(&mut b, &ips) {
        h[o] += 1;
    }
    for (i, &w) in weights.iter().enumerate() {
        let expected = 40_000 * w / 8;
        // A ring is less even than a map: ±20 %.
        assert!(
            h[i].abs_diff(expected) * 5 <= expected,
            "server {i}: {} expected {expected} {h:?}",
            h[i]
        );
    }
}

#[test]
fn consistent_weight_change_moves_keys_only_to_or_from_that_server() {
    // A server's points depend only on its own name and weight: raising its weight only
    // adds points, so keys move only onto it.
    let ips = random_ips(34, 5000);
    let before = owners(
        &mut source(HashType::Consistent, &slots(&[1, 1, 1, 1])),
        &ips,
    );
    let after = owners(
        &mut source(HashType::Consistent, &slots(&[1, 1, 3, 1])),
        &ips,
    );
    let mut moved = 0;
    for k in 0..ips.len() {
        if after[k] != before[k] {
            assert_eq!(after[k], 2);
            moved += 1;
        }
    }
    assert!(moved > 500, "{moved}");
}

#[test]
fn ring_size_is_bounded() {
    assert_eq!(chash::points_per_weight(5), chash::MAX_POINTS_PER_WEIGHT);
    assert_eq!(chash::points_per_weight(0), chash::MAX_POINTS_PER_WEIGHT);
    assert_eq!(chash::points_per_weight(1_000_000), 1);
    let big: Vec<ServerSlot> = (0..200).map(|i| slot(&format!("n{i}"), 256)).collect();
    let b = source(HashType::Consistent, &big);
    assert!(b.primary.ring.len() <= 200 * 256);
    assert!(b.primary.ring.len() as u64 >= chash::RING_BUDGET / 2);
    let small = source(HashType::Consistent, &slots(&[1, 2]));
    assert_eq!(
        small.primary.ring.len(),
        3 * chash::MAX_POINTS_PER_WEIGHT as usize
    );
}

#[test]
fn debug_output_stays_small() {
    let big: Vec<ServerSlot> = (0..50).map(|i| slot(&format!("n{i}"), 100)).collect();
    let b = source(HashType::Consistent, &big);
    let text = format!("{b:?}");
    assert!(
        text.contains("Ring { points: "),
        "{}",
        &text[..200.min(text.len())]
    );
    assert!(text.len() < 20_000, "{} bytes", text.len());
}

// ---------------------------------------------------------------- L7 hashing

fn l7(l7: &L7Hash, hash_type: HashType, servers: &[ServerSlot]) -> Balancer {
    Balancer::new_l7(l7, hash_type, servers)
}

/// Owner of each key under balancer `b`, each key carried by a request of `b`'s kind.
fn key_owners(b: &mut Balancer, algo: &L7Hash, keys: &[String]) -> Vec<usize> {
    keys.iter()
        .map(|k| b.pick(&Req::keyed(algo, k).ctx(), &[]).unwrap())
        .collect()
}

fn random_keys(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n).map(|_| random_key(&mut rng)).collect()
}

#[test]
fn l7_same_key_same_server() {
    let servers = slots(&[1, 2, 3, 1, 5]);
    let keys = random_keys(51, 2000);
    for algo in l7_algos() {
        for hash_type in [HashType::MapBased, HashType::Consistent] {
            let mut a = l7(&algo, hash_type, &servers);
            // Another shard: an independent instance must agree.
            let mut b = l7(&algo, hash_type, &servers);
            let first = key_owners(&mut a, &algo, &keys);
            assert_eq!(key_owners(&mut a, &algo, &keys), first, "{algo:?}");
            assert_eq!(key_owners(&mut b, &algo, &keys), first, "{algo:?}");
            // Keys do spread (not all on one server).
            assert!(first.iter().any(|&s| s != first[0]), "{algo:?}");
        }
    }
}

/// What each L7 algorithm takes as its key: requests that must hash alike, and the parsing
/// helpers on edge cases.
#[test]
fn l7_key_extraction() {
    let same = |algo: &L7Hash, x: &Req, y: &Req| {
        for hash_type in [HashType::MapBased, HashType::Consistent] {
            let servers = slots(&[1; 64]);
            let mut b = l7(algo, hash_type, &servers);
            // 64 servers: two different keys collide 1 time in 64.
            assert_eq!(
                b.pick(&x.ctx(), &[]),
                b.pick(&y.ctx(), &[]),
                "{algo:?} {x:?} {y:?}"
            );
        }
    };
    let uri = L7Hash::Uri(UriHashOptions::default());
    // The query is not part of the key (HAProxy's default, without `whole`).
    same(&uri, &Req::new("/a/b", &[]), &Req::new("/a/b?x=1", &[]));
    same(&uri, &Req::new("/a/b?y=2", &[]), &Req::new("/a/b?x=1", &[]));
    let path = |u: &'static [u8]| uri_key(u, UriHashOptions::default());
    assert_eq!(path(b"/a/b?x=1?y"), b"/a/b");
    assert_eq!(path(b"/a/b"), b"/a/b");
    assert_eq!(path(b"?x"), b"");

    let param = L7Hash::UrlParam("userid".to_string());
    same(
        &param,
        &Req::new("/x?userid=42", &[]),
        &Req::new("/y/z?a=1&userid=42&b=2", &[]),
    );
    assert_eq!(
        query_param(b"/x?a=1&userid=42&b=2", b"userid"),
        Some(&b"42"[..])
    );
    assert_eq!(
        query_param(b"/x?userid=42#frag", b"userid"),
        Some(&b"42"[..])
    );
    // The first occurrence wins; names are case-sensitive and matched whole.
    assert_eq!(
        query_param(b"/?userid=1&userid=2", b"userid"),
        Some(&b"1"[..])
    );
    assert_eq!(query_param(b"/?UserId=1", b"userid"), None);
    assert_eq!(query_param(b"/?xuserid=1&useridx=2", b"userid"), None);
    assert_eq!(query_param(b"/?userid&a=1", b"userid"), None);
    assert_eq!(query_param(b"/userid=1", b"userid"), None);
    assert_eq!(query_param(b"/?userid=", b"userid"), Some(&b""[..]));

    let host = L7Hash::Hdr("host".to_string());
    same(
        &host,
        &Req::new("/", &[("Host", "example.com")]),
        &Req::new("/other", &[("HOST", " example.com\t")]),
    );
    assert_eq!(trim_blanks(b" \t a b \t"), b"a b");
    assert_eq!(trim_blanks(b" \t "), b"");

    // The public `HeaderLookup` impls find the first occurrence, case-insensitively.
    let pairs: &[(&[u8], &[u8])] = &[(b"Accept", b"*/*"), (b"HoSt", b"a"), (b"host", b"b")];
    assert_eq!(pairs.header(b"host"), Some(&b"a"[..]));
    assert_eq!(pairs.header(b"cookie"), None);
    let parsed: &[httparse::Header<'_>] = &[httparse::Header {
        name: "Host",
        value: b"c",
    }];
    assert_eq!(parsed.header(b"HOST"), Some(&b"c"[..]));
    let ctx = PickContext {
        headers: Some(&pairs),
        ..Default::default()
    };
    let mut b = l7(&host, HashType::Consistent, &slots(&[1, 1, 1]));
    let via_pairs = b.pick(&ctx, &[]);
    assert_eq!(
        via_pairs,
        b.pick(&Req::new("/", &[("Host", "a")]).ctx(), &[])
    );
}

#[test]
fn l7_map_based_spreads_by_weight() {
    let weights = [1usize, 2, 3, 4];
    let keys = random_keys(52, 40_000);
    for algo in l7_algos() {
        let mut b = l7(&algo, HashType::MapBased, &slots(&[1, 2, 3, 4]));
        let mut h = [0usize; 4];
        for o in key_owners(&mut b, &algo, &keys) {
            h[o] += 1;
        }
        for (i, &w) in weights.iter().enumerate() {
            let expected = keys.len() * w / 10;
            let tolerance = expected / 20; // 5 %
            assert!(
                h[i].abs_diff(expected) <= tolerance,
                "{algo:?} server {i}: {} (expected {expected}) {h:?}",
                h[i]
            );
        }
    }
}

#[test]
fn l7_consistent_removal_moves_only_the_removed_servers_keys() {
    let keys = random_keys(53, 10_000);
    for algo in l7_algos() {
        check_removal(
            &slots(&[1, 1, 2, 1, 1]),
            true,
            &|s| l7(&algo, HashType::Consistent, s),
            &|b| key_owners(b, &algo, &keys),
        );
    }
}

#[test]
fn l7_consistent_exclusion_equals_removal() {
    let servers = slots(&[1, 2, 1, 3]);
    let keys = random_keys(54, 2000);
    for algo in l7_algos() {
        let mut full = l7(&algo, HashType::Consistent, &servers);
        for x in 0..servers.len() {
            let mut down = servers.clone();
            down[x].usable = false;
            let mut without = l7(&algo, HashType::Consistent, &down);
            for k in &keys {
                let req = Req::keyed(&algo, k);
                let got = full.pick(&req.ctx(), &[x]).unwrap();
                assert_ne!(got, x);
                assert_eq!(Some(got), without.pick(&req.ctx(), &[]), "{algo:?}");
            }
        }
    }
}

#[test]
fn l7_without_key_is_round_robin() {
    for algo in l7_algos() {
        let mut absent = vec![Req::keyless(&algo)];
        match &algo {
            // No URI at all (never the case for a parsed request; an empty path is "/").
            L7Hash::Uri(_) => absent.push(Req::new("", &[("Host", "a.test")])),
            // Present without a value.
            L7Hash::UrlParam(name) => {
                absent.push(Req::new(&format!("/a?{name}="), &[]));
                absent.push(Req::new(&format!("/a?{name}&b=1"), &[]));
                absent.push(Req::new(&format!("/a/{name}=1"), &[]));
            }
            L7Hash::Hdr(name) => {
                absent.push(Req::new("/", &[(name, "")]));
                absent.push(Req::new("/", &[(name, "  \t")]));
            }
        }
        for hash_type in [HashType::MapBased, HashType::Consistent] {
            for req in &absent {
                let mut b = l7(&algo, hash_type, &slots(&[3, 1]));
                let seq: Vec<usize> = (0..8).map(|_| b.pick(&req.ctx(), &[]).unwrap()).collect();
                assert_eq!(seq, vec![0, 0, 1, 0, 0, 0, 1, 0], "{algo:?} {req:?}");
                assert_eq!(b.pick(&req.ctx(), &[0]), Some(1));
                // No context at all (an L4 caller): round robin too.
                assert_eq!(b.pick(&no_ctx(), &[1]), Some(0));
            }
        }
    }
}

#[test]
fn l7_keys_do_not_leak_between_algorithms() {
    // A `uri` balancer ignores the client address and headers; `source` ignores the URI.
    let servers = slots(&[1; 16]);
    let mut uri = l7(
        &L7Hash::Uri(UriHashOptions::default()),
        HashType::MapBased,
        &servers,
    );
    let req = Req::new("/same", &[("Host", "a")]);
    let mut ctx = req.ctx();
    let first = uri.pick(&ctx, &[]);
    let mut rng = Rng(55);
    for _ in 0..50 {
        ctx.client_ip = Some(rng.ipv4());
        assert_eq!(uri.pick(&ctx, &[]), first);
    }
    // `source` without an address is round robin even when the request has a URI.
    let mut src = source(HashType::MapBased, &slots(&[1, 1]));
    let seq: Vec<usize> = (0..4).map(|_| src.pick(&req.ctx(), &[]).unwrap()).collect();
    assert_eq!(seq, vec![0, 1, 0, 1]);
}

#[test]
fn l7_inherit_keeps_rotation_only_for_the_same_key() {
    // Rotation state (used for keyless requests) carries over between rebuilds of the same
    // algorithm, not from a balancer hashing another parameter.
    let servers = slots(&[1, 1, 1]);
    let a = L7Hash::UrlParam("a".to_string());
    let keyless = Req::keyless(&a);
    let mut old = l7(&a, HashType::MapBased, &servers);
    assert_eq!(old.pick(&keyless.ctx(), &[]), Some(0));
    let mut same = l7(&a, HashType::MapBased, &servers);
    same.inherit_counts(&old);
    assert_eq!(same.pick(&keyless.ctx(), &[]), Some(1));
    let b = L7Hash::UrlParam("b".to_string());
    let mut other = l7(&b, HashType::MapBased, &servers);
    other.inherit_counts(&old);
    assert_eq!(other.pick(&keyless.ctx(), &[]), Some(0));
}

// ---------------------------------------------------------------- balance uri options

fn uri_opts(whole: bool, len: u32, depth: u32) -> UriHashOptions {
    UriHashOptions { whole, len, depth }
}

/// `balance = "uri ..."` through the configuration type, as the runtime builds it.
fn uri_balancer(opts: UriHashOptions, hash_type: HashType, servers: &[ServerSlot]) -> Balancer {
    Balancer::new(&Balance::Uri(opts), hash_type, servers)
}

fn pick_uri(b: &mut Balancer, uri: &str) -> usize {
    let ctx = PickContext {
        uri: Some(uri.as_bytes()),
        ..Default::default()
    };
    b.pick(&ctx, &[]).unwrap()
}

#[test]
fn uri_key_follows_haproxy() {
    let key = |uri: &'static str, whole, len, depth| {
        std::str::from_utf8(uri_key(uri.as_bytes(), uri_opts(whole, len, depth))).unwrap()
    };
    // Default: up to the first '?'; `whole`: everything.
    assert_eq!(key("/a/b/c?x=1", false, 0, 0), "/a/b/c");
    assert_eq!(key("/a/b/c?x=1", true, 0, 0), "/a/b/c?x=1");
    assert_eq!(key("/a/b/c", true, 0, 0), "/a/b/c");
    // depth N stops before the (N+1)-th slash.
    assert_eq!(key("/a/b/c?x", false, 0, 2), "/a/b");
    assert_eq!(key("/a/b/d", false, 0, 2), "/a/b");
    assert_eq!(key("/a/b/", false, 0, 2), "/a/b");
    assert_eq!(key("/a/b", false, 0, 2), "/a/b");
    assert_eq!(key("/a", false, 0, 2), "/a");
    assert_eq!(key("/a/b/c", false, 0, 1), "/a");
    assert_eq!(key("/", false, 0, 1), "/");
    assert_eq!(key("//a", false, 0, 1), "/");
    assert_eq!(key("/a/b/c", false, 0, 3), "/a/b/c");
    assert_eq!(key("/a/b/c/d", false, 0, u32::MAX), "/a/b/c/d");
    // The query ends the key first unless `whole`, where its slashes count too.
    assert_eq!(key("/a?x/y/z", false, 0, 2), "/a");
    assert_eq!(key("/a?x/y/z", true, 0, 1), "/a?x");
    assert_eq!(key("/a?x/y/z", true, 0, 2), "/a?x/y");
    // len N: at most N bytes, applied before the rest.
    assert_eq!(key("/abcdef", false, 4, 0), "/abc");
    assert_eq!(key("/ab", false, 4, 0), "/ab");
    assert_eq!(key("/abc", false, 4, 0), "/abc");
    assert_eq!(key("/a?bc", false, 4, 0), "/a");
    assert_eq!(key("/a?bc", true, 4, 0), "/a?b");
    assert_eq!(key("/a", false, u32::MAX, 0), "/a");
    // Both: whichever is reached first.
    assert_eq!(key("/aa/bb/cc", false, 5, 2), "/aa/b");
    assert_eq!(key("/aa/bb/cc", false, 10, 1), "/aa");
    // An absolute-form target is hashed as received (HAProxy without `path-only`): the
    // slashes of `//` count.
    assert_eq!(key("http://h/a/b?q", false, 0, 2), "http://h");
    assert_eq!(key("http://h/a/b?q", false, 0, 3), "http://h/a");
    assert_eq!(key("http://h/a/b?q", false, 0, 0), "http://h/a/b");
    assert_eq!(key("", false, 3, 2), "");
}

#[test]
fn uri_options_stick() {
    let servers = slots(&[1, 2, 1, 3, 1]);
    let keys = random_keys(56, 500);
    for opts in [
        uri_opts(false, 0, 0),
        uri_opts(true, 0, 0),
        uri_opts(false, 8, 0),
        uri_opts(false, 0, 2),
        uri_opts(true, 12, 3),
    ] {
        for hash_type in [HashType::MapBased, HashType::Consistent] {
            let mut a = uri_balancer(opts, hash_type, &servers);
            let mut b = uri_balancer(opts, hash_type, &servers);
            let mut c = Balancer::new_l7(&L7Hash::Uri(opts), hash_type, &servers);
            let owners: Vec<usize> = keys
                .iter()
                .map(|k| pick_uri(&mut a, &format!("/{k}/x/y?s={k}")))
                .collect();
            for (k, &o) in keys.iter().zip(&owners) {
                let uri = format!("/{k}/x/y?s={k}");
                assert_eq!(pick_uri(&mut a, &uri), o, "{opts:?}");
                // Another shard, and the L7 constructor, agree.
                assert_eq!(pick_uri(&mut b, &uri), o, "{opts:?}");
                assert_eq!(pick_uri(&mut c, &uri), o, "{opts:?}");
            }
            assert!(owners.iter().any(|&s| s != owners[0]), "{opts:?}");
        }
    }
}

/// Two targets that must share a server (same key) under `opts`, and, over many random
/// prefixes, targets that do not under `other` (the options are really applied).
fn check_grouping(opts: UriHashOptions, other: UriHashOptions, x: &str, y: &str) {
    let servers = slots(&[1; 64]);
    for hash_type in [HashType::MapBased, HashType::Consistent] {
        let mut b = uri_balancer(opts, hash_type, &servers);
        let mut o = uri_balancer(other, hash_type, &servers);
        let mut differ = 0;
        for k in random_keys(57, 200) {
            let (x, y) = (format!("/{k}{x}"), format!("/{k}{y}"));
            assert_eq!(
                pick_uri(&mut b, &x),
                pick_uri(&mut b, &y),
                "{opts:?} {x} {y}"
            );
            if pick_uri(&mut o, &x) != pick_uri(&mut o, &y) {
                differ += 1;
            }
        }
        // 64 servers: two different keys share one 1 time in 64.
        assert!(differ > 150, "{other:?}: only {differ} of 200 differ");
    }
}

#[test]
fn uri_depth_groups_a_directory() {
    // `/k/b/c?x` and `/k/b/d` share a server under depth 2, not without it.
    check_grouping(
        uri_opts(false, 0, 2),
        uri_opts(false, 0, 0),
        "/b/c?x",
        "/b/d",
    );
    check_grouping(uri_opts(true, 0, 2), uri_opts(true, 0, 3), "/b/c?x", "/b/d");
    check_grouping(uri_opts(false, 0, 1), uri_opts(false, 0, 2), "/b", "/c/d");
}

#[test]
fn uri_len_limits_the_key() {
    // Targets are `/` + a random key (`k` + 1 to 16 hex digits: at most 18 bytes) + 26
    // common bytes + a differing one: len 24 keeps the random part and cuts before the
    // difference.
    check_grouping(
        uri_opts(false, 24, 0),
        uri_opts(false, 0, 0),
        "/common-part-that-is-long-1",
        "/common-part-that-is-long-2",
    );
    // len counts the query too with `whole`.
    check_grouping(
        uri_opts(true, 24, 0),
        uri_opts(true, 0, 0),
        "?session=0123456789abcdef-1",
        "?session=0123456789abcdef-2",
    );
}

#[test]
fn uri_whole_includes_the_query() {
    check_grouping(
        uri_opts(false, 0, 0),
        uri_opts(true, 0, 0),
        "/p?x=1",
        "/p?x=2",
    );
    check_grouping(uri_opts(false, 0, 0), uri_opts(true, 0, 0), "/p", "/p?");
}

#[test]
fn uri_options_change_ends_rotation_inheritance_only() {
    // Keyless requests (no target) are balanced round robin; the rotation carries over
    // between rebuilds with the same options only.
    let servers = slots(&[1, 1, 1]);
    let mut old = uri_balancer(uri_opts(false, 0, 2), HashType::MapBased, &servers);
    assert_eq!(old.pick(&no_ctx(), &[]), Some(0));
    let mut same = uri_balancer(uri_opts(false, 0, 2), HashType::MapBased, &servers);
    same.inherit_counts(&old);
    assert_eq!(same.pick(&no_ctx(), &[]), Some(1));
    let mut other = uri_balancer(uri_opts(false, 0, 3), HashType::MapBased, &servers);
    other.inherit_counts(&old);
    assert_eq!(other.pick(&no_ctx(), &[]), Some(0));
}

// ---------------------------------------------------------------- first

#[test]
fn first_takes_the_first_usable() {
    let mut servers = slots(&[1, 5, 1]);
    let mut b = Balancer::new(&Balance::First, HashType::MapBased, &servers);
    assert_eq!(sequence(&mut b, 5), vec![0; 5]);
    assert_eq!(b.pick(&no_ctx(), &[0]), Some(1));
    assert_eq!(b.pick(&no_ctx(), &[0, 1]), Some(2));
    servers[0].usable = false;
    let mut b = Balancer::new(&Balance::First, HashType::MapBased, &servers);
    assert_eq!(b.pick(&no_ctx(), &[]), Some(1));
    servers[1].weight = 0;
    let mut b = Balancer::new(&Balance::First, HashType::MapBased, &servers);
    assert_eq!(b.pick(&no_ctx(), &[]), Some(2));
}

// ---------------------------------------------------------------- common rules

#[test]
fn weight_zero_and_unusable_get_nothing() {
    let mut rng = Rng(41);
    for algo in every_algorithm() {
        let mut servers = slots(&[0, 1, 3, 1, 2]);
        servers[3].usable = false;
        let mut b = algo.build(&servers);
        let mut h = [0usize; 5];
        for _ in 0..3000 {
            let s = algo.pick(&mut b, &mut rng, &[]).unwrap();
            h[s] += 1;
            b.connection_started(s);
            if rng.below(2) == 0 {
                b.connection_ended(s);
            }
        }
        assert_eq!(h[0], 0, "{algo:?}: weight 0 picked");
        assert_eq!(h[3], 0, "{algo:?}: unusable picked");
        if !matches!(algo, Algorithm::L4(Balance::First, _)) {
            assert!(h[1] > 0 && h[2] > 0 && h[4] > 0, "{algo:?}: {h:?}");
        }
    }
}

#[test]
fn nothing_usable_gives_none() {
    let mut rng = Rng(42);
    let mut down = slots(&[1, 1]);
    down[0].usable = false;
    down[1].usable = false;
    let cases: Vec<Vec<ServerSlot>> = vec![
        vec![],
        slots(&[0, 0, 0]),
        down,
        vec![backup("b", 0), slot("p", 0)],
    ];
    for algo in every_algorithm() {
        for servers in &cases {
            let mut b = algo.build(servers);
            assert!(!b.has_usable_server());
            assert_eq!(algo.pick(&mut b, &mut rng, &[]), None, "{algo:?}");
            assert_eq!(b.pick(&no_ctx(), &[]), None, "{algo:?}");
        }
        // Everything usable but excluded.
        let mut b = algo.build(&slots(&[1, 2, 3]));
        assert!(b.has_usable_server());
        assert_eq!(algo.pick(&mut b, &mut rng, &[2, 0, 1]), None, "{algo:?}");
        assert_eq!(b.pick(&no_ctx(), &[0, 1, 2]), None, "{algo:?}");
    }
}

#[test]
fn backups_only_when_no_primary_is_usable() {
    let mut rng = Rng(43);
    for algo in every_algorithm() {
        let mut servers = vec![
            slot("p0", 1),
            backup("b0", 1),
            slot("p1", 2),
            backup("b1", 3),
        ];
        let mut b = algo.build(&servers);
        for _ in 0..500 {
            let s = algo.pick(&mut b, &mut rng, &[]).unwrap();
            assert!(s == 0 || s == 2, "{algo:?}: backup {s} picked");
        }
        // Primaries excluded (already tried): the backups take over.
        for _ in 0..100 {
            let s = algo.pick(&mut b, &mut rng, &[0, 2]).unwrap();
            assert!(s == 1 || s == 3, "{algo:?}: {s}");
        }
        assert_eq!(algo.pick(&mut b, &mut rng, &[0, 1, 2, 3]), None);

        // One primary left: still no backup.
        servers[0].usable = false;
        let mut b = algo.build(&servers);
        for _ in 0..100 {
            assert_eq!(algo.pick(&mut b, &mut rng, &[]), Some(2), "{algo:?}");
        }
        // No primary: backups, with the algorithm among them.
        servers[2].weight = 0;
        let mut b = algo.build(&servers);
        let mut h = [0usize; 4];
        for _ in 0..4000 {
            let s = algo.pick(&mut b, &mut rng, &[]).unwrap();
            h[s] += 1;
            b.connection_started(s);
        }
        assert_eq!(h[0] + h[2], 0, "{algo:?}: {h:?}");
        match algo {
            Algorithm::L4(Balance::First, _) => assert_eq!(h, [0, 4000, 0, 0]),
            Algorithm::L4(Balance::RoundRobin | Balance::StaticRr | Balance::LeastConn, _) => {
                assert_eq!(h, [0, 1000, 0, 3000], "{algo:?}")
            }
            Algorithm::L4(
                Balance::Source | Balance::Uri(_) | Balance::UrlParam(_) | Balance::Hdr(_),
                _,
            )
            | Algorithm::L7(..) => {
                // Weighted 1:3, hashing: ±20 %.
                assert!(h[1].abs_diff(1000) <= 200, "{algo:?}: {h:?}");
            }
        }
        // Excluding a backup moves to the other backup.
        for _ in 0..100 {
            assert_eq!(algo.pick(&mut b, &mut rng, &[3]), Some(1), "{algo:?}");
        }
    }
}

#[test]
fn excluded_is_honoured_by_every_algorithm() {
    let mut rng = Rng(44);
    for algo in every_algorithm() {
        for round in 0..200 {
            let n = 1 + rng.below(8) as usize;
            let servers: Vec<ServerSlot> = (0..n)
                .map(|i| ServerSlot {
                    name: format!("x{round}-{i}"),
                    weight: rng.below(5) as u32,
                    backup: rng.below(4) == 0,
                    usable: rng.below(5) != 0,
                })
                .collect();
            let mut b = algo.build(&servers);
            for _ in 0..20 {
                let excluded: Vec<usize> = (0..n).filter(|_| rng.below(3) == 0).collect();
                let candidates: Vec<usize> = (0..n)
                    .filter(|&i| {
                        servers[i].usable && servers[i].weight > 0 && !excluded.contains(&i)
                    })
                    .collect();
                let primaries = candidates.iter().any(|&i| !servers[i].backup);
                let got = algo.pick(&mut b, &mut rng, &excluded);
                match got {
                    None => assert!(candidates.is_empty(), "{algo:?}: None but {candidates:?}"),
                    Some(s) => {
                        assert!(candidates.contains(&s), "{algo:?}: {s} not allowed");
                        assert!(!primaries || !servers[s].backup, "{algo:?}: backup {s}");
                    }
                }
                if let Some(s) = got {
                    b.connection_started(s);
                }
            }
        }
    }
}

#[test]
fn inherit_counts_matches_by_name() {
    let old_servers = vec![slot("a", 1), slot("b", 1), slot("c", 1)];
    let mut old = leastconn(&old_servers);
    for (s, n) in [(0, 3), (1, 1), (2, 2)] {
        for _ in 0..n {
            old.connection_started(s);
        }
    }
    // New snapshot: reordered, "a" gone, "d" new, "c" down.
    let mut new_servers = vec![slot("c", 1), slot("d", 1), slot("b", 1)];
    new_servers[0].usable = false;
    let mut new = leastconn(&new_servers);
    new.inherit_counts(&old);
    assert_eq!(new.active_connections(0), 2); // c
    assert_eq!(new.active_connections(1), 0); // d
    assert_eq!(new.active_connections(2), 1); // b
    assert_eq!(new.server_index("b"), Some(2));
    assert_eq!(new.servers()[1].name, "d");
    // The counts drive leastconn: d (0) before b (1).
    assert_eq!(new.pick(&no_ctx(), &[]), Some(1));
    new.connection_started(1);
    new.connection_started(1);
    assert_eq!(new.pick(&no_ctx(), &[]), Some(2));
    // A connection to c that started on the old balancer ends on the new one.
    new.connection_ended(0);
    assert_eq!(new.active_connections(0), 1);
    // Out-of-range indexes are ignored.
    new.connection_started(99);
    new.connection_ended(99);
    assert_eq!(new.active_connections(99), 0);
}

#[test]
fn inherit_keeps_the_rotation_going() {
    // Rebuilding after every pick (a flapping health check) must not restart the rotation
    // at the first server each time.
    for balance in [Balance::RoundRobin, Balance::StaticRr, Balance::LeastConn] {
        let servers = slots(&[1, 1, 1]);
        let mut b = Balancer::new(&balance, HashType::MapBased, &servers);
        let mut h = [0usize; 3];
        for _ in 0..300 {
            let s = b.pick(&no_ctx(), &[]).unwrap();
            h[s] += 1;
            let mut next = Balancer::new(&balance, HashType::MapBased, &servers);
            next.inherit_counts(&b);
            b = next;
        }
        assert_eq!(h, [100, 100, 100], "{balance:?}");
    }
    // Weighted, with the server set changing in between: still fair afterwards.
    let mut b = rr(&slots(&[3, 1]));
    sequence(&mut b, 3);
    let mut next = rr(&[slot("s1", 1), slot("s0", 3), slot("s2", 2)]);
    next.inherit_counts(&b);
    let h = histogram(&mut next, 3, 6000);
    for (i, want) in [1000usize, 3000, 2000].into_iter().enumerate() {
        assert!(h[i].abs_diff(want) <= 2, "{h:?}");
    }
}
