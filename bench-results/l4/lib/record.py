#!/usr/bin/env python3
"""record.py OUTDIR SCENARIO key=value... -> one measured run.

Derives the metrics from the raw counters collected by run.sh, writes
OUTDIR/runs/<scenario>-<variant>-r<rep>.json and appends one row to OUTDIR/results.csv
(creating it with a header). Prints the row (human-readable) on stdout.

optional: attempt kept noise (run.sh measures a disturbed run again; kept=0 rows are
          recorded but left out of the summary)
bulk  raw keys: fetch_file (lines "time_total size_download http_code"), expect_bytes
short raw keys: wrk_file (wrk --latency output)
tcp_before/tcp_after: files of `tcp_counters` (namespace-wide TCP counters) around the run
common raw keys: variant rep wall_s hz ncpu proxy_ticks proxy_sched_ns backend_ticks
                 client_cpu_s total_busy_ticks cpu0_pct cpu1_pct quiet quiet_wait_s
                 busy_before_pct rustc_before rustc_after proxy_conns
"""
import csv
import json
import os
import re
import sys

COLUMNS = [
    "scenario", "variant", "rep", "attempt", "kept", "ok", "gib_per_s", "proxy_cpu_s_per_gib", "conns_per_s",
    "proxy_cpu_us_per_conn", "bytes", "conns", "proxy_conns", "errors", "wall_s",
    "proxy_cpu_s", "proxy_sched_s", "backend_cpu_s", "client_cpu_s", "other_cpu_s",
    "interference_pct", "cpu_core0_pct", "cpu_core1_pct", "p50_ms", "p99_ms", "quiet",
    "quiet_wait_s", "busy_before_pct", "rustc_before", "rustc_after", "tcp_segs_per_conn",
    "tcp_out_rsts", "tcp_retrans", "tcp_aborts", "note",
]
TCP_KEYS = ["Tcp_ActiveOpens", "Tcp_PassiveOpens", "Tcp_AttemptFails", "Tcp_EstabResets",
            "Tcp_InSegs", "Tcp_OutSegs", "Tcp_RetransSegs", "Tcp_InErrs", "Tcp_OutRsts",
            "TcpExt_TW", "TcpExt_TWRecycled", "TcpExt_ListenOverflows", "TcpExt_ListenDrops",
            "TcpExt_TCPAbortOnData", "TcpExt_TCPAbortOnClose", "TcpExt_TCPAbortOnTimeout",
            "TcpExt_TCPAbortOnLinger", "TcpExt_TCPAbortFailed", "TcpExt_DelayedACKs",
            "TcpExt_TCPOrigDataSent", "TcpExt_TCPTimeWaitOverflow", "TcpExt_TCPSynRetrans"]


def tcp_delta(before, after):
    """Deltas of selected TCP counters between two `tcp_counters` files."""
    def load(fn):
        d = {}
        try:
            for line in open(fn):
                k, _, v = line.partition(" ")
                d[k] = int(v)
        except (OSError, ValueError):
            pass
        return d
    a, b = load(before), load(after)
    return {k: b[k] - a[k] for k in TCP_KEYS if k in a and k in b}
GIB = float(1 << 30)


def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    n, u = float(m.group(1)), m.group(2)
    return n * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[u]


def parse_wrk(text):
    """wrk 4.x output -> dict(requests, duration_s, rps, errors..., p50_ms, p99_ms)."""
    out = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    out["requests"] = int(m.group(1))
    out["duration_s"] = ms(m.group(2) + m.group(3)) / 1e3
    out["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M))
    out["p50_ms"] = ms(pct["50"]) if "50" in pct else None
    out["p99_ms"] = ms(pct["99"]) if "99" in pct else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["err_connect"], out["err_read"], out["err_write"], out["err_timeout"] = (
        tuple(map(int, m.groups())) if m else (0, 0, 0, 0))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non2xx"] = int(m.group(1)) if m else 0
    return out


def main():
    outdir, scenario = sys.argv[1], sys.argv[2]
    raw = dict(a.split("=", 1) for a in sys.argv[3:])
    hz = float(raw["hz"])
    ncpu = int(raw["ncpu"])
    f = lambda k: float(raw.get(k) or 0)  # noqa: E731
    proxy_cpu = f("proxy_ticks") / hz
    backend_cpu = f("backend_ticks") / hz
    client_cpu = f("client_cpu_s")
    wall = f("wall_s")
    other = max(0.0, f("total_busy_ticks") / hz - proxy_cpu - backend_cpu - client_cpu)
    row = {c: "" for c in COLUMNS}
    row.update(
        scenario=scenario, variant=raw["variant"], rep=raw["rep"], wall_s=f"{wall:.3f}",
        attempt=raw.get("attempt", "1"), kept=raw.get("kept", "1"),
        proxy_cpu_s=f"{proxy_cpu:.2f}", proxy_sched_s=f"{f('proxy_sched_ns') / 1e9:.3f}",
        backend_cpu_s=f"{backend_cpu:.2f}", client_cpu_s=f"{client_cpu:.2f}",
        other_cpu_s=f"{other:.2f}",
        interference_pct=f"{100 * other / (wall * ncpu):.1f}" if wall > 0 else "",
        cpu_core0_pct=raw.get("cpu0_pct", ""), cpu_core1_pct=raw.get("cpu1_pct", ""),
        quiet=raw.get("quiet", ""), quiet_wait_s=raw.get("quiet_wait_s", ""),
        busy_before_pct=raw.get("busy_before_pct", ""), rustc_before=raw.get("rustc_before", ""),
        rustc_after=raw.get("rustc_after", ""), proxy_conns=raw.get("proxy_conns", ""),
    )
    is_proxy = raw["variant"] != "direct"
    detail = {"raw": raw}
    notes = []
    if scenario == "bulk":
        fetches = []
        for line in open(raw["fetch_file"]):
            p = line.split()
            if len(p) >= 3:
                fetches.append({"time_total": float(p[0]), "size": int(float(p[1])), "code": p[2]})
        expect = int(raw["expect_bytes"])
        nbytes = sum(x["size"] for x in fetches)
        bad = [x for x in fetches if x["size"] != expect or x["code"] != "200"]
        want = int(raw.get("fetches", len(fetches)))
        ok = not bad and len(fetches) == want
        if not ok:
            notes.append(f"{len(bad)} short/failed fetches of {want}")
        gib = nbytes / GIB
        row.update(ok=int(ok), bytes=nbytes, errors=len(bad) + max(0, want - len(fetches)),
                   gib_per_s=f"{gib / wall:.3f}" if wall > 0 else "",
                   proxy_cpu_s_per_gib=f"{proxy_cpu / gib:.3f}" if is_proxy and gib > 0 else "")
        detail["fetches"] = fetches
        detail["gib_per_s_curl_time"] = (gib / sum(x["time_total"] for x in fetches)) if fetches else None
    else:
        w = parse_wrk(open(raw["wrk_file"]).read())
        errors = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"] + w["non2xx"]
        ok = w["requests"] > 0
        if errors:
            notes.append("wrk errors: connect %d read %d write %d timeout %d non2xx %d" % (
                w["err_connect"], w["err_read"], w["err_write"], w["err_timeout"], w["non2xx"]))
        row.update(ok=int(ok), conns=w["requests"], errors=errors, conns_per_s=f"{w['rps']:.0f}",
                   proxy_cpu_us_per_conn=(f"{1e6 * proxy_cpu / w['requests']:.2f}"
                                          if is_proxy and w["requests"] else ""),
                   p50_ms="" if w["p50_ms"] is None else f"{w['p50_ms']:.3f}",
                   p99_ms="" if w["p99_ms"] is None else f"{w['p99_ms']:.3f}")
        detail["wrk"] = w
    noise = raw.get("noise", "").replace("_", " ").strip().rstrip(";")
    if noise:
        notes.append("disturbed: " + noise + ("" if raw.get("kept", "1") == "1" else " (discarded, measured again)"))
    tcp = tcp_delta(raw.get("tcp_before", ""), raw.get("tcp_after", ""))
    detail["tcp_counters_delta"] = tcp
    if tcp:
        conns = int(row["conns"] or 0) if scenario == "short" else 0
        if conns:
            row["tcp_segs_per_conn"] = f"{tcp.get('Tcp_OutSegs', 0) / conns:.2f}"
        row["tcp_out_rsts"] = tcp.get("Tcp_OutRsts", "")
        row["tcp_retrans"] = tcp.get("Tcp_RetransSegs", "")
        row["tcp_aborts"] = sum(v for k, v in tcp.items() if k.startswith("TcpExt_TCPAbortOn"))
    row["note"] = "; ".join(notes)
    detail["row"] = row

    os.makedirs(os.path.join(outdir, "runs"), exist_ok=True)
    name = f"{scenario}-{raw['variant']}-r{raw['rep']}-a{raw.get('attempt', '1')}.json"
    with open(os.path.join(outdir, "runs", name), "w") as fh:
        json.dump(detail, fh, indent=1, sort_keys=True)
    csv_path = os.path.join(outdir, "results.csv")
    new = not os.path.exists(csv_path)
    with open(csv_path, "a", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            wr.writeheader()
        wr.writerow(row)
    keys = ["scenario", "variant", "rep", "attempt", "kept", "ok", "gib_per_s", "proxy_cpu_s_per_gib", "conns_per_s",
            "proxy_cpu_us_per_conn", "errors", "proxy_cpu_s", "cpu_core0_pct", "cpu_core1_pct",
            "interference_pct", "quiet", "note"]
    print(" ".join(f"{k}={row[k]}" for k in keys if row[k] != ""))


if __name__ == "__main__":
    main()
