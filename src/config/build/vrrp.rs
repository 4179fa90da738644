//! `[vrrp.NAME]`: VRRP instances, in Keepalived's vocabulary (`virtual_router_id`,
//! `priority`, `advert_int`, `nopreempt`, `virtual_ipaddress`, `track_script`, ...).

use super::*;

/// Default `priority` (Keepalived's).
pub const DEFAULT_VRRP_PRIORITY: u8 = 100;
/// Default `advert_int`.
pub const DEFAULT_ADVERT_INT: Duration = Duration::from_secs(1);
/// Shortest VRRPv3 `advert_int` (one centisecond step).
pub const MIN_ADVERT_INT_V3: Duration = Duration::from_millis(10);
/// Longest VRRPv3 `advert_int` (12 bits of centiseconds).
pub const MAX_ADVERT_INT_V3: Duration = Duration::from_millis(40_950);
/// Longest `preempt_delay` (Keepalived's limit).
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
/// Default `garp_master_repeat`.
pub const DEFAULT_GARP_REPEAT: u32 = 5;
/// Default `garp_master_delay`.
pub const DEFAULT_GARP_DELAY: Duration = Duration::from_secs(5);
/// Most virtual addresses in one IPv6 advert that still fits a 1280-byte minimum MTU.
pub const MAX_VIRTUAL_ADDRESSES_V6: usize = 76;
/// Most virtual addresses in one IPv4 advert (the count is one byte).
pub const MAX_VIRTUAL_ADDRESSES_V4: usize = 255;
/// Largest `weight` of a tracker (Keepalived's range).
pub const MAX_TRACK_WEIGHT: i64 = 253;

pub(super) const VRRP: Spec = Spec {
    section: "[vrrp.NAME]",
    keys: &[
        "interface",
        "virtual_router_id",
        "priority",
        "advert_int",
        "version",
        "nopreempt",
        "preempt_delay",
        "auth_pass",
        "virtual_ipaddress",
        "unicast_peers",
        "track_proxy",
        "track_script",
        "track_interface",
        "sync_group",
        "notify",
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "garp_master_repeat",
        "garp_master_delay",
        "garp_master_refresh",
    ],
    later: &[],
};
const TRACK_PROXY: Spec = Spec {
    section: "in the track_proxy table",
    keys: &["weight", "backends"],
    later: &[],
};
const TRACK_SCRIPT: Spec = Spec {
    section: "in a track_script entry",
    keys: &["script", "interval", "timeout", "weight", "rise", "fall"],
    later: &[],
};

/// Every `[vrrp.NAME]` of `[vrrp]` (`t`, at `f`), sorted by name, with the checks across
/// instances (one VRID per interface and family) and against the backends.
pub(super) fn instances(
    r: &mut Reader<'_>,
    t: &dyn TableLike,
    f: &Field<'_>,
    backends: &[Backend],
) -> Vec<VrrpInstance> {
    let mut out: Vec<(VrrpInstance, usize, String)> = Vec::new();
    for (name, field) in named_sections(r, t, f) {
        if let Some(table) = r.table(&field) {
            if let Some(instance) = instance(r, name, table, &field, backends) {
                out.push((instance, field.line, field.path.clone()));
            }
        }
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    for i in 0..out.len() {
        for j in 0..i {
            let (a, b) = (&out[j].0, &out[i].0);
            if a.interface == b.interface
                && a.virtual_router_id == b.virtual_router_id
                && a.ipv6() == b.ipv6()
            {
                let (line, path) = (out[i].1, out[i].2.clone());
                r.error(
                    line,
                    &join(&path, "virtual_router_id"),
                    format!(
                        "virtual_router_id {} on {} is already used by [vrrp.{}]: each virtual router on an interface needs its own id (per address family)",
                        b.virtual_router_id, b.interface, a.name
                    ),
                );
            }
        }
    }
    out.into_iter().map(|(i, _, _)| i).collect()
}

fn instance(
    r: &mut Reader<'_>,
    name: String,
    t: &dyn TableLike,
    f: &Field<'_>,
    backends: &[Backend],
) -> Option<VrrpInstance> {
    r.check_keys(t, f, &VRRP, ALL);
    let interface = match r.child(t, f, "interface") {
        Some(field) => interface_name(r, &field),
        None => missing(r, t, &VRRP, f, "interface", ", e.g. interface = \"eth0\""),
    };
    let vrid = match r.child(t, f, "virtual_router_id") {
        Some(field) => r.integer(&field, 1, 255).map(|v| v as u8),
        None => missing(
            r,
            t,
            &VRRP,
            f,
            "virtual_router_id",
            " (1..=255, the same on every box of this virtual router)",
        ),
    };
    let priority = get(r, t, f, "priority", |r, f| {
        r.integer(f, 1, 255).map(|v| v as u8)
    })
    .unwrap_or(DEFAULT_VRRP_PRIORITY);
    let version = get(r, t, f, "version", |r, f| match r.integer(f, 2, 3)? {
        2 => Some(VrrpVersion::V2),
        _ => Some(VrrpVersion::V3),
    })
    .unwrap_or(VrrpVersion::V3);
    let advert_int =
        get(r, t, f, "advert_int", |r, f| advert_int(r, f, version)).unwrap_or(DEFAULT_ADVERT_INT);
    let nopreempt = get(r, t, f, "nopreempt", |r, f| r.boolean(f)).unwrap_or(false);
    let preempt_delay = get(r, t, f, "preempt_delay", |r, f| {
        let d = r.duration(f)?;
        if d > MAX_PREEMPT_DELAY {
            r.error(
                f.line,
                &f.path,
                "preempt_delay is at most \"1000s\" (as in Keepalived)",
            );
            return None;
        }
        Some(d)
    })
    .unwrap_or(Duration::ZERO);
    let auth_pass = get(r, t, f, "auth_pass", |r, f| {
        let s = r.nonempty_string(f)?;
        if version != VrrpVersion::V2 {
            r.error(
                f.line,
                &f.path,
                "auth_pass is for VRRPv2 only (RFC 5798 removed authentication from VRRPv3): set version = 2 to talk to a Keepalived box that uses auth_pass, or remove it",
            );
            return None;
        }
        if s.len() > crate::control::vrrp::packet::MAX_PASSWORD {
            r.error(
                f.line,
                &f.path,
                format!(
                    "auth_pass is at most 8 bytes (RFC 3768 simple password), found {}",
                    s.len()
                ),
            );
            return None;
        }
        Some(s.to_string())
    });
    let vips = match r.child(t, f, "virtual_ipaddress") {
        Some(field) => virtual_addresses(r, &field, version),
        None => missing(
            r,
            t,
            &VRRP,
            f,
            "virtual_ipaddress",
            ", e.g. virtual_ipaddress = [\"10.0.0.100/24\"]",
        ),
    };
    let ipv6 = vips
        .as_ref()
        .and_then(|v: &Vec<VirtualAddress>| v.first())
        .map(|a| a.address.is_ipv6());
    let unicast_peers = get(r, t, f, "unicast_peers", |r, f| peers(r, f, ipv6)).unwrap_or_default();
    let track_proxy = get(r, t, f, "track_proxy", |r, f| track_proxy(r, f, backends));
    let track_script = get(r, t, f, "track_script", track_scripts).unwrap_or_default();
    let track_interface = get(r, t, f, "track_interface", |r, f| {
        let items = r.array(f, "an array of interface names such as [\"eth1\"]")?;
        let mut out = Vec::new();
        for item in items {
            if let Some(name) = interface_name(r, &item) {
                out.push(name);
            }
        }
        Some(out)
    })
    .unwrap_or_default();
    let sync_group = get(r, t, f, "sync_group", |r, f| {
        let s = r.nonempty_string(f)?;
        check_name(s)
            .map_err(|msg| r.error(f.line, &f.path, msg))
            .ok()?;
        Some(s.to_string())
    });
    let notify = |r: &mut Reader<'_>, key: &str| get(r, t, f, key, command);
    let notify_all = notify(r, "notify");
    let notify_master = notify(r, "notify_master");
    let notify_backup = notify(r, "notify_backup");
    let notify_fault = notify(r, "notify_fault");
    let notify_stop = notify(r, "notify_stop");
    let garp_master_repeat = get(r, t, f, "garp_master_repeat", |r, f| r.u32_in(f, 1, 100))
        .unwrap_or(DEFAULT_GARP_REPEAT);
    let garp_master_delay =
        get(r, t, f, "garp_master_delay", |r, f| r.duration(f)).unwrap_or(DEFAULT_GARP_DELAY);
    let garp_master_refresh =
        get(r, t, f, "garp_master_refresh", |r, f| r.duration(f)).filter(|d| !d.is_zero());
    Some(VrrpInstance {
        name,
        interface: interface?,
        virtual_router_id: vrid?,
        priority,
        advert_int,
        version,
        nopreempt,
        preempt_delay,
        auth_pass,
        virtual_ipaddress: vips?,
        unicast_peers,
        track_proxy,
        track_script,
        track_interface,
        sync_group,
        notify: notify_all,
        notify_master,
        notify_backup,
        notify_fault,
        notify_stop,
        garp_master_repeat,
        garp_master_delay,
        garp_master_refresh,
    })
}

/// A Linux interface name: 1..=15 bytes, no `/`, `:`-free is not required (aliases),
/// no whitespace.
fn interface_name(r: &mut Reader<'_>, f: &Field<'_>) -> Option<String> {
    let s = r.nonempty_string(f)?;
    if s.len() > 15 || s.contains('/') || s.chars().any(char::is_whitespace) || s == "." {
        r.error(
            f.line,
            &f.path,
            format!("\"{s}\" is not an interface name (at most 15 characters, no '/' or spaces)"),
        );
        return None;
    }
    Some(s.to_string())
}

fn advert_int(r: &mut Reader<'_>, f: &Field<'_>, version: VrrpVersion) -> Option<Duration> {
    let d = r.duration(f)?;
    let ms = d.as_millis();
    match version {
        VrrpVersion::V3 => {
            if d < MIN_ADVERT_INT_V3
                || d > MAX_ADVERT_INT_V3
                || ms % 10 != 0
                || d.subsec_nanos() % 1_000_000 != 0
            {
                r.error(
                    f.line,
                    &f.path,
                    "VRRPv3 advert_int is \"10ms\"..=\"40950ms\" in steps of 10 ms (the advert carries centiseconds)",
                );
                return None;
            }
        }
        VrrpVersion::V2 => {
            if d.subsec_nanos() != 0 || d.as_secs() == 0 || d.as_secs() > 255 {
                r.error(
                    f.line,
                    &f.path,
                    "VRRPv2 advert_int is whole seconds, \"1s\"..=\"255s\" (use version = 3 for shorter intervals)",
                );
                return None;
            }
        }
    }
    Some(d)
}

/// `virtual_ipaddress`: one family, no duplicates, IPv4 only with VRRPv2.
fn virtual_addresses(
    r: &mut Reader<'_>,
    f: &Field<'_>,
    version: VrrpVersion,
) -> Option<Vec<VirtualAddress>> {
    let items = r.array(f, "an array of addresses such as [\"10.0.0.100/24\"]")?;
    if items.is_empty() {
        r.error(
            f.line,
            &f.path,
            "give at least one virtual address, e.g. [\"10.0.0.100/24\"]",
        );
        return None;
    }
    let mut out: Vec<VirtualAddress> = Vec::new();
    let mut ok = true;
    for item in &items {
        let Some(text) = r.string(item) else {
            ok = false;
            continue;
        };
        let vip = match parse_virtual_address(text) {
            Ok(v) => v,
            Err(msg) => {
                r.error(item.line, &item.path, msg);
                ok = false;
                continue;
            }
        };
        if let Some(first) = out.first() {
            if first.address.is_ipv6() != vip.address.is_ipv6() {
                r.error(
                    item.line,
                    &item.path,
                    format!("{vip} is not of the same family as {first}: one instance moves addresses of one family (define a second [vrrp.NAME] for the other)"),
                );
                ok = false;
                continue;
            }
        }
        if out.iter().any(|o| o.address == vip.address) {
            r.error(
                item.line,
                &item.path,
                format!("{} is listed twice", vip.address),
            );
            ok = false;
            continue;
        }
        if vip.address.is_ipv6() && version == VrrpVersion::V2 {
            r.error(
                item.line,
                &item.path,
                "VRRPv2 is IPv4 only: use version = 3 for IPv6 addresses",
            );
            ok = false;
            continue;
        }
        out.push(vip);
    }
    let max = if out.first().is_some_and(|a| a.address.is_ipv6()) {
        MAX_VIRTUAL_ADDRESSES_V6
    } else {
        MAX_VIRTUAL_ADDRESSES_V4
    };
    if out.len() > max {
        r.error(
            f.line,
            &f.path,
            format!(
                "{} addresses do not fit one advertisement (at most {max})",
                out.len()
            ),
        );
        return None;
    }
    ok.then_some(out)
}

/// `"10.0.0.100/24"`, `"10.0.0.100"` (= /32), `"fd00::100/64"`, `"fd00::100"` (= /128).
pub fn parse_virtual_address(text: &str) -> Result<VirtualAddress, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let address: IpAddr = addr.parse().map_err(|_| {
        format!("\"{text}\" is not an address such as \"10.0.0.100/24\" or \"fd00::100/64\"")
    })?;
    let max = if address.is_ipv6() { 128 } else { 32 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n >= 1 && n <= max => n,
            _ => return Err(format!("\"{text}\": the prefix length must be 1..={max}")),
        },
    };
    let bad = match address {
        IpAddr::V4(a) => {
            a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback()
        }
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast() || a.is_loopback(),
    };
    if bad {
        return Err(format!(
            "{address} cannot be a virtual address (unspecified, loopback, multicast or broadcast)"
        ));
    }
    Ok(VirtualAddress { address, prefix })
}

fn peers(r: &mut Reader<'_>, f: &Field<'_>, ipv6: Option<bool>) -> Option<Vec<IpAddr>> {
    let items = r.array(f, "an array of addresses such as [\"10.0.0.12\"]")?;
    let mut out = Vec::new();
    for item in items {
        let Some(text) = r.string(&item) else {
            continue;
        };
        match text.parse::<IpAddr>() {
            Ok(a) if a.is_multicast() || a.is_unspecified() => r.error(
                item.line,
                &item.path,
                format!("{a} cannot be a unicast peer"),
            ),
            Ok(a) if ipv6.is_some_and(|v6| v6 != a.is_ipv6()) => r.error(
                item.line,
                &item.path,
                format!("{a} is not of the family of virtual_ipaddress: adverts travel in the family of the virtual addresses"),
            ),
            Ok(a) if out.contains(&a) => {
                r.error(item.line, &item.path, format!("{a} is listed twice"))
            }
            Ok(a) => out.push(a),
            Err(_) => r.error(
                item.line,
                &item.path,
                format!("\"{text}\" is not an IP address (no port, no prefix length)"),
            ),
        }
    }
    Some(out)
}

fn weight(r: &mut Reader<'_>, f: &Field<'_>) -> Option<i32> {
    r.integer(f, -MAX_TRACK_WEIGHT, MAX_TRACK_WEIGHT)
        .map(|w| w as i32)
}

fn track_proxy(r: &mut Reader<'_>, f: &Field<'_>, backends: &[Backend]) -> Option<TrackProxy> {
    let Some(t) = f.as_table() else {
        r.error(
            f.line,
            &f.path,
            format!(
                "expected a table such as {{ weight = -50 }}, found {}",
                describe(f.node)
            ),
        );
        return None;
    };
    r.check_keys(t, f, &TRACK_PROXY, ALL);
    let weight = match r.child(t, f, "weight") {
        Some(wf) => weight(r, &wf)?,
        None => missing(
            r,
            t,
            &TRACK_PROXY,
            f,
            "weight",
            " (negative: subtracted while the proxy is unhealthy; 0: FAULT while unhealthy)",
        )?,
    };
    let names = get(r, t, f, "backends", |r, bf| {
        let items = r.array(bf, "an array of backend names such as [\"app\"]")?;
        let mut out = Vec::new();
        for item in items {
            let name = r.nonempty_string(&item)?;
            if !backends.iter().any(|b| b.name == name) {
                let known: Vec<&str> = backends.iter().map(|b| b.name.as_str()).collect();
                r.error(
                    item.line,
                    &item.path,
                    format!(
                        "no backend \"{name}\"{}",
                        suggest::did_you_mean(name, known.iter().copied())
                    ),
                );
                continue;
            }
            out.push(name.to_string());
        }
        Some(out)
    })
    .unwrap_or_default();
    Some(TrackProxy {
        weight,
        backends: names,
    })
}

fn track_scripts(r: &mut Reader<'_>, f: &Field<'_>) -> Option<Vec<TrackScript>> {
    let entries = table_array(r, f, "script")?;
    let mut out = Vec::new();
    for entry in entries {
        let Some(t) = entry.as_table() else {
            continue;
        };
        r.check_keys(t, &entry, &TRACK_SCRIPT, ALL);
        let script = match r.child(t, &entry, "script") {
            Some(sf) => command(r, &sf),
            None => missing(
                r,
                t,
                &TRACK_SCRIPT,
                &entry,
                "script",
                ", e.g. script = \"/usr/libexec/halb/check-upstream\"",
            ),
        };
        let interval = get(r, t, &entry, "interval", |r, f| {
            positive_duration(r, f, "interval must be greater than zero")
        })
        .unwrap_or(Duration::from_secs(1));
        let timeout = get(r, t, &entry, "timeout", |r, f| {
            positive_duration(r, f, "timeout must be greater than zero")
        })
        .unwrap_or(interval);
        let weight = get(r, t, &entry, "weight", weight).unwrap_or(0);
        let rise = get(r, t, &entry, "rise", |r, f| count(r, f, "rise")).unwrap_or(1);
        let fall = get(r, t, &entry, "fall", |r, f| count(r, f, "fall")).unwrap_or(1);
        if let Some(script) = script {
            out.push(TrackScript {
                script,
                interval,
                timeout,
                weight,
                rise,
                fall,
            });
        }
    }
    Some(out)
}

/// A command line: an absolute program path and its arguments, split on whitespace (no
/// shell: quote nothing; write a script for anything fancier).
fn command(r: &mut Reader<'_>, f: &Field<'_>) -> Option<Vec<String>> {
    let s = r.nonempty_string(f)?;
    let words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    match words.first() {
        Some(program) if program.starts_with('/') => Some(words),
        _ => {
            r.error(
                f.line,
                &f.path,
                format!("\"{s}\" must start with an absolute program path, e.g. \"/etc/halb/notify.sh master\" (it is run directly, without a shell)"),
            );
            None
        }
    }
}
