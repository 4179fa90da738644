#!/usr/bin/env python3
"""analyze.py failover|saturate RUNDIR IMPL ADVERT_S REP VIP  -> one JSON line
   analyze.py --summary results.jsonl                       -> summary table (markdown)

Times are milliseconds after t_kill (the instant the master was killed). Sources in RUNDIR:
probe.log (client prober), ipmon-lb1.log / ipmon-lb2.log (`ip -ts monitor address`),
capture.pcap (VRRP + ARP on the bridge, read with `tcpdump -r -nn -e -tt`), and for the
saturate mode t_load0 / t_load1 / load.txt / busy_pct."""
import datetime, json, os, re, statistics, subprocess, sys


def read(rd, name, default=None):
    p = os.path.join(rd, name)
    return open(p).read().strip() if os.path.exists(p) else default


def ipmon(path, vip):
    """-> [(epoch, 'add'|'del')] for the VIP."""
    ev = []
    if not os.path.exists(path):
        return ev
    for line in open(path):
        m = re.match(r"\[(\S+)\]\s+(Deleted\s+)?.*inet (\S+)/", line)
        if m and m.group(3) == vip:
            t = datetime.datetime.fromisoformat(m.group(1)).timestamp()
            ev.append((t, "del" if m.group(2) else "add"))
    return ev


def pcap(path):
    """-> (adverts [(t, src_ip, vrid, prio)], garps [(t, src_mac, ip)])."""
    adverts, garps = [], []
    if not os.path.exists(path):
        return adverts, garps
    out = subprocess.run(["tcpdump", "-r", path, "-nn", "-e", "-tt"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        w = line.split()
        if len(w) < 2:
            continue
        t = float(w[0])
        m = re.search(r"(\d+\.\d+\.\d+\.\d+) > \S+: VRRPv\d, Advertisement, vrid (\d+), prio (\d+)", line)
        if m:
            adverts.append((t, m.group(1), int(m.group(2)), int(m.group(3))))
            continue
        m = re.search(r"Request who-has (\S+) (?:\(\S+\) )?tell (\S+),", line)
        if m and m.group(1) == m.group(2):
            garps.append((t, w[1].lower(), m.group(1)))
            continue
        m = re.search(r"Reply (\S+) is-at", line)
        if m and len(w) > 3 and w[3].rstrip(",") == "ff:ff:ff:ff:ff:ff":   # broadcast replies only
            garps.append((t, w[1].lower(), m.group(1)))
    return adverts, garps


def probes(rd):
    out = []
    p = os.path.join(rd, "probe.log")
    if os.path.exists(p):
        for line in open(p):
            v = line.split()
            if len(v) == 4:
                out.append((float(v[0]), float(v[1]), v[2], v[3]))
    return out


def failover_fields(rd, vip, t0):
    ms = lambda t: None if t is None else round((t - t0) * 1000, 1)
    pr = probes(rd)
    after = [p for p in pr if p[0] >= t0]
    last_ok_lb1 = max((p[1] for p in pr if p[2] == "ok" and p[3] == "lb1"), default=None)
    first_ok_lb2 = min((p[1] for p in after if p[2] == "ok" and p[3] == "lb2"), default=None)
    fails = [p for p in after if p[2] != "ok" and (first_ok_lb2 is None or p[0] < first_ok_lb2)]
    kinds = {}
    for p in fails:
        kinds[p[2]] = kinds.get(p[2], 0) + 1
    e2 = ipmon(os.path.join(rd, "ipmon-lb2.log"), vip)
    return {
        # the headline: kill -9 of the master -> first successful client request via the VIP
        "failover_ms": ms(first_ok_lb2),
        "client_outage_ms": (None if first_ok_lb2 is None or last_ok_lb1 is None
                             else round((first_ok_lb2 - last_ok_lb1) * 1000, 1)),
        "client_failed_probes": kinds,
        "client_pre_kill_fail": sum(1 for p in pr if p[0] < t0 and p[2] != "ok"),
        "lb2_vip_added_ms": ms(min((t for t, k in e2 if k == "add" and t >= t0), default=None)),
        "probe_attempts": len(pr),
    }


def analyze(mode, rd, impl, adv, rep, vip):
    r = {"mode": mode, "impl": impl, "advert_int": float(adv), "rep": int(rep),
         "run": os.path.basename(rd)}
    t_kill = read(rd, "t_kill")
    if t_kill is not None:
        t0 = float(t_kill)
        r.update(failover_fields(rd, vip, t0))
        # Decomposition from the capture: the backup's timer (last advert of lb1 -> first
        # advert of lb2; the protocol says 3 x advert_int + skew) and, after it, how long
        # the new master takes to serve (VIP added, ARP announced, client answered).
        net = vip.rsplit(".", 1)[0]
        adverts, _ = pcap(os.path.join(rd, "capture.pcap"))
        last1 = max((t for t, s, _, p in adverts if s == net + ".11" and p > 0 and t <= t0 + 0.05), default=None)
        first2 = min((t for t, s, _, p in adverts if s == net + ".12" and t > t0), default=None)
        if last1 is not None and first2 is not None:
            r["master_down_timer_ms"] = round((first2 - last1) * 1000, 1)
            r["kill_after_last_advert_ms"] = round((t0 - last1) * 1000, 1)
            if r.get("failover_ms") is not None:
                r["takeover_to_served_ms"] = round(r["failover_ms"] - (first2 - t0) * 1000, 1)
    else:
        r["failover_ms"] = None
    if mode == "saturate":
        l0, l1 = float(read(rd, "t_load0")), float(read(rd, "t_load1"))
        net = vip.rsplit(".", 1)[0]
        lb1_ip, lb2_ip = net + ".11", net + ".12"
        adverts, _ = pcap(os.path.join(rd, "capture.pcap"))
        win = lambda t: l0 <= t <= l1 + 1.0   # + 1 s: a late reaction still counts
        e2 = ipmon(os.path.join(rd, "ipmon-lb2.log"), vip)
        r["load_seconds"] = round(l1 - l0, 1)
        r["load"] = read(rd, "load.txt", "")
        r["machine_busy_pct"] = float(read(rd, "busy_pct", "nan"))
        # false failovers: the backup claiming the VIP while the master is alive
        r["false_failovers"] = sum(1 for t, k in e2 if k == "add" and win(t))
        r["backup_adverts_during_load"] = sum(1 for t, s, _, p in adverts if s == lb2_ip and win(t))
        ts = [t for t, s, _, p in adverts if s == lb1_ip and l0 <= t <= l1]
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        if gaps:
            gaps.sort()
            r["master_advert_gap_median_ms"] = round(statistics.median(gaps) * 1000, 2)
            r["master_advert_gap_p99_ms"] = round(gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))] * 1000, 2)
            r["master_advert_gap_max_ms"] = round(gaps[-1] * 1000, 2)
        r["master_adverts_during_load"] = len(ts)
        r["lb1_alone_after_load"] = read(rd, "placement_after_load") == "lb1"
    return r


def summary(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    groups = {}
    for r in rows:
        groups.setdefault((r["mode"], r["impl"], r["advert_int"]), []).append(r)

    def stat(rs, k):
        v = [r[k] for r in rs if r.get(k) is not None]
        if not v:
            return "n/a"
        return f"{statistics.median(v):g} / {max(v):g}"

    print("| mode | impl | advert_int | runs | failover ms (median / max) | client outage ms (median / max) | backup's master-down timer ms (median / max) | takeover to served ms (median / max) | failed runs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (mode, impl, adv), rs in sorted(groups.items()):
        failed = sum(1 for r in rs if r.get("failover_ms") is None)
        print(f"| {mode} | {impl} | {adv:g} s | {len(rs)} | {stat(rs, 'failover_ms')} | "
              f"{stat(rs, 'client_outage_ms')} | {stat(rs, 'master_down_timer_ms')} | "
              f"{stat(rs, 'takeover_to_served_ms')} | {failed} |")
    sat = [r for r in rows if r["mode"] == "saturate"]
    if sat:
        print()
        print("| impl | advert_int | load s | false failovers | backup adverts | master advert gap ms (median / p99 / max) | machine busy % | load |")
        print("|---|---|---|---|---|---|---|---|")
        for r in sat:
            print(f"| {r['impl']} | {r['advert_int']:g} s | {r['load_seconds']} | {r['false_failovers']} | "
                  f"{r['backup_adverts_during_load']} | {r.get('master_advert_gap_median_ms', 'n/a')} / "
                  f"{r.get('master_advert_gap_p99_ms', 'n/a')} / {r.get('master_advert_gap_max_ms', 'n/a')} | "
                  f"{r['machine_busy_pct']} | {r['load']} |")


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        summary(sys.argv[2])
    else:
        print(json.dumps(analyze(*sys.argv[1:7])))
