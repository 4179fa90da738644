#!/usr/bin/env python3
"""record.py OUTDIR key=value... -> one measured L7 run.

Derives the metrics from the raw counters collected by run.sh, writes
OUTDIR/runs/<case>-<variant>-r<rep>-a<attempt>.json and appends one row to
OUTDIR/results.csv (creating it with a header). Prints the row (short form) on stdout.

keys: case variant rep attempt kept noise wrk_file body_bytes conns duration hz ncpu wall_s
      proxy_ticks proxy_sched_ns backend_ticks client_cpu_s total_busy_ticks cpu0_pct cpu1_pct
      quiet quiet_wait_s busy_before_pct rustc_before rustc_after hwm_reset rss_before_kib
      rss_peak_kib rss_after_kib backend_before backend_after (nginx stub_status
      "accepts=N,handled=N,requests=N,active=N") t_start t_end
"""
import csv
import json
import os
import re
import sys

COLUMNS = [
    "case", "variant", "rep", "attempt", "kept", "ok", "rps", "requests", "errors",
    "p50_ms", "p75_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "cpu_us_per_req",
    "rss_peak_kib", "rss_before_kib", "rss_after_kib", "hwm_reset",
    "backend_conns", "backend_reqs", "backend_conns_per_1k_req",
    "proxy_cpu_s", "proxy_sched_s", "backend_cpu_s", "client_cpu_s", "other_cpu_s",
    "interference_pct", "cpu_core0_pct", "cpu_core1_pct", "wall_s", "quiet", "quiet_wait_s",
    "busy_before_pct", "rustc_before", "rustc_after", "t_start", "t_end", "note",
]


def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    n, u = float(m.group(1)), m.group(2)
    return n * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[u]


def parse_wrk(text):
    """wrk 4.x output (--latency, plus latency.lua's LAT_US/SUMMARY lines) -> dict."""
    out = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    out["requests"] = int(m.group(1))
    out["duration_s"] = ms(m.group(2) + m.group(3)) / 1e3
    out["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    # wrk's rounded percentiles (fallback)
    pct = {k: ms(v) for k, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M)}
    out["wrk_pct_ms"] = pct
    # exact ones from latency.lua (µs)
    m = re.search(r"^LAT_US (.*)$", text, re.M)
    lat = {}
    if m:
        for k, v in re.findall(r"(\S+?)=([\d.]+)", m.group(1)):
            lat[k] = float(v)
    out["lat_us"] = lat

    def p(name, wrk_key):
        if name in lat:
            return lat[name] / 1e3
        return pct.get(wrk_key)

    out["p50_ms"], out["p75_ms"], out["p90_ms"], out["p99_ms"] = (
        p("p50", "50"), p("p75", "75"), p("p90", "90"), p("p99", "99"))
    out["p999_ms"] = p("p99.9", None)
    out["max_ms"] = lat["max"] / 1e3 if "max" in lat else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["err_connect"], out["err_read"], out["err_write"], out["err_timeout"] = (
        tuple(map(int, m.groups())) if m else (0, 0, 0, 0))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"^SUMMARY (.*)$", text, re.M)
    out["summary"] = {k: int(v) for k, v in re.findall(r"(\S+?)=(\d+)", m.group(1))} if m else {}
    return out


def stub(s):
    d = {}
    for part in (s or "").split(","):
        k, _, v = part.partition("=")
        if v.isdigit():
            d[k] = int(v)
    return d


def f3(x):
    return "" if x is None else f"{x:.3f}"


def main():
    outdir = sys.argv[1]
    raw = dict(a.split("=", 1) for a in sys.argv[2:])
    hz = float(raw["hz"])
    ncpu = int(raw["ncpu"])
    f = lambda k: float(raw.get(k) or 0)  # noqa: E731
    is_proxy = raw["variant"] != "direct"
    proxy_cpu = f("proxy_ticks") / hz
    backend_cpu = f("backend_ticks") / hz
    client_cpu = f("client_cpu_s")
    wall = f("wall_s")
    other = max(0.0, f("total_busy_ticks") / hz - proxy_cpu - backend_cpu - client_cpu)
    w = parse_wrk(open(raw["wrk_file"]).read())
    notes = []
    errors = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"] + w["non2xx"]
    if errors:
        notes.append("wrk errors: connect %d read %d write %d timeout %d non2xx %d" % (
            w["err_connect"], w["err_read"], w["err_write"], w["err_timeout"], w["non2xx"]))
    # a few read errors at the very end of a close run are wrk stopping mid-request; more is a failure
    ok = w["requests"] > 0 and errors <= max(10, w["requests"] // 1000)
    if not ok:
        notes.append("run not usable (no requests or > 0.1 % errors)")
    b0, b1 = stub(raw.get("backend_before")), stub(raw.get("backend_after"))
    bconns = breqs = None
    if "accepts" in b0 and "accepts" in b1:
        # minus 1: the stub_status request that read the second snapshot
        bconns = b1["accepts"] - b0["accepts"] - 1
        breqs = b1["requests"] - b0["requests"] - 1
    row = {c: "" for c in COLUMNS}
    row.update(
        case=raw["case"], variant=raw["variant"], rep=raw["rep"], attempt=raw.get("attempt", "1"),
        kept=raw.get("kept", "1"), ok=int(ok), rps=f"{w['rps']:.0f}", requests=w["requests"], errors=errors,
        p50_ms=f3(w["p50_ms"]), p75_ms=f3(w["p75_ms"]), p90_ms=f3(w["p90_ms"]), p99_ms=f3(w["p99_ms"]),
        p999_ms=f3(w["p999_ms"]), max_ms=f3(w["max_ms"]),
        cpu_us_per_req=(f"{1e6 * proxy_cpu / w['requests']:.2f}" if is_proxy and w["requests"] else ""),
        rss_peak_kib=raw.get("rss_peak_kib", ""), rss_before_kib=raw.get("rss_before_kib", ""),
        rss_after_kib=raw.get("rss_after_kib", ""), hwm_reset=raw.get("hwm_reset", "") if is_proxy else "",
        backend_conns="" if bconns is None else bconns, backend_reqs="" if breqs is None else breqs,
        backend_conns_per_1k_req=(f"{1000 * bconns / breqs:.2f}" if bconns is not None and breqs else ""),
        proxy_cpu_s=f"{proxy_cpu:.2f}" if is_proxy else "",
        proxy_sched_s=f"{f('proxy_sched_ns') / 1e9:.3f}" if is_proxy else "",
        backend_cpu_s=f"{backend_cpu:.2f}", client_cpu_s=f"{client_cpu:.2f}", other_cpu_s=f"{other:.2f}",
        interference_pct=f"{100 * other / (wall * ncpu):.1f}" if wall > 0 else "",
        cpu_core0_pct=raw.get("cpu0_pct", ""), cpu_core1_pct=raw.get("cpu1_pct", ""), wall_s=f"{wall:.3f}",
        quiet=raw.get("quiet", ""), quiet_wait_s=raw.get("quiet_wait_s", ""),
        busy_before_pct=raw.get("busy_before_pct", ""), rustc_before=raw.get("rustc_before", ""),
        rustc_after=raw.get("rustc_after", ""), t_start=raw.get("t_start", ""), t_end=raw.get("t_end", ""),
    )
    if breqs is not None and abs(breqs - w["requests"]) > max(200, w["requests"] // 50):
        notes.append(f"backend served {breqs} requests, wrk counted {w['requests']}")
    noise = raw.get("noise", "").replace("_", " ").strip().rstrip(";")
    if noise:
        notes.append("disturbed: " + noise + ("" if raw.get("kept", "1") == "1" else " (discarded, measured again)"))
    row["note"] = "; ".join(notes)
    detail = {"row": row, "wrk": w, "raw": raw, "backend_before": b0, "backend_after": b1}

    name = f"{raw['case']}-{raw['variant']}-r{raw['rep']}-a{raw.get('attempt', '1')}.json"
    os.makedirs(os.path.join(outdir, "runs"), exist_ok=True)
    with open(os.path.join(outdir, "runs", name), "w") as fh:
        json.dump(detail, fh, indent=1, sort_keys=True)
    csv_path = os.path.join(outdir, "results.csv")
    new = not os.path.exists(csv_path)
    with open(csv_path, "a", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=COLUMNS)
        if new:
            wr.writeheader()
        wr.writerow(row)
    keys = ["case", "variant", "rep", "attempt", "kept", "ok", "rps", "p50_ms", "p99_ms", "p999_ms",
            "cpu_us_per_req", "rss_peak_kib", "backend_conns_per_1k_req", "errors", "cpu_core0_pct",
            "cpu_core1_pct", "interference_pct", "quiet", "note"]
    print(" ".join(f"{k}={row[k]}" for k in keys if row[k] != ""))


if __name__ == "__main__":
    main()
