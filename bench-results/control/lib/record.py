#!/usr/bin/env python3
"""Append one measured window to OUTDIR/windows.jsonl and print a one-line digest.

usage: record.py OUTDIR key=value ...
Numbers are stored as numbers. `wrk_file=PATH` adds requests / duration / req/s / errors
parsed from wrk's output. Derived values (percentages, µs per request) are computed here
so that run.sh stays arithmetic-free.
"""
import json
import os
import re
import sys


def num(v):
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def parse_wrk(path):
    out = {}
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return {"wrk_error": f"cannot read {path}"}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if m:
        out["requests"] = int(m.group(1))
        scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
        out["wrk_duration_s"] = float(m.group(2)) * scale
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["req_per_s"] = float(m.group(1))
    errs = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errs += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errs += int(m.group(1))
    out["wrk_errors"] = errs
    return out


def main():
    outdir = sys.argv[1]
    rec = {}
    for arg in sys.argv[2:]:
        k, _, v = arg.partition("=")
        rec[k] = num(v)
    if "wrk_file" in rec:
        rec.update(parse_wrk(rec["wrk_file"]))
        rec["wrk_file"] = os.path.relpath(rec["wrk_file"], outdir)
    hz, wall = rec["hz"], rec["wall_s"]
    pct = lambda ticks: round(100.0 * ticks / hz / wall, 2)  # noqa: E731  percent of one core
    for k in ("main", "shard", "other", "proc", "nginx"):
        if f"{k}_ticks" in rec:
            rec[f"{k}_pct"] = pct(rec[f"{k}_ticks"])
        if f"{k}_ns" in rec:
            rec[f"{k}_sched_pct"] = round(100.0 * rec[f"{k}_ns"] / 1e9 / wall, 2)
    ncpu = rec["ncpu"]
    others = rec["total_busy_ticks"] - rec.get("proc_ticks", 0) - rec.get("nginx_ticks", 0)
    others -= round(rec.get("client_cpu_s", 0.0) * hz)
    rec["others_pct_of_machine"] = round(max(0.0, 100.0 * others / hz / wall / ncpu), 1)
    accepts = rec.get("nginx_accepts")
    if isinstance(accepts, int):
        # one stub_status connection (the closing read) is inside the window
        rec["backend_conns_per_s"] = round((accepts - 1) / wall, 1)
    if rec.get("requests"):
        n = rec["requests"]
        rec["shard_us_per_req"] = round(1e6 * rec["shard_ticks"] / hz / n, 3)
        rec["shard_sched_us_per_req"] = round(1e3 * rec["shard_ns"] / 1e6 / n, 3)
        rec["proc_us_per_req"] = round(1e6 * rec["proc_ticks"] / hz / n, 3)
        if "shard_vctx" in rec:
            # the shard sleeps (and is woken) this often per request: batching
            rec["shard_wakeups_per_req"] = round(rec["shard_vctx"] / n, 4)
    noise = []
    if rec.get("quiet") == 0:
        noise.append("no quiet start")
    if rec.get("rustc_before", 0) or rec.get("rustc_after", 0):
        noise.append("rustc running")
    if rec["others_pct_of_machine"] > rec.get("noise_max_pct", 10):
        noise.append(f"interference {rec['others_pct_of_machine']}%")
    rec["noisy"] = ", ".join(noise)
    with open(os.path.join(outdir, "windows.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")
    kind = rec["kind"] + (f" ({rec['mode']})" if rec.get("mode") else "")
    digest = f"{kind} {rec['variant']} rep {rec['rep']}: control(main) {rec.get('main_pct', rec.get('proc_pct'))}%"
    if "backend_conns_per_s" in rec:
        digest += f", backend conns/s {rec['backend_conns_per_s']}"
    if rec.get("requests"):
        digest += (f", {rec['requests']} req ({rec.get('req_per_s')}/s), shard "
                   f"{rec['shard_us_per_req']} µs/req (sched {rec['shard_sched_us_per_req']}, "
                   f"{rec.get('shard_wakeups_per_req')} wakeups/req)")
    digest += f", others {rec['others_pct_of_machine']}% of machine"
    if rec["noisy"]:
        digest += f" [NOISY: {rec['noisy']}]"
    print(digest)


if __name__ == "__main__":
    main()
