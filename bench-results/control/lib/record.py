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
    if "main_vctx" in rec:
        # control thread (HAProxy: its only thread): sleeps (voluntary) and preemptions per second
        rec["main_vctx_per_s"] = round(rec["main_vctx"] / wall, 1)
        rec["main_ivctx_per_s"] = round(rec["main_ivctx"] / wall, 1)
    if "core_wall_s" in rec:
        # whole cores (idle windows): c0 = the control core, c1 = the shard core (which is
        # also the remote farm's core). busy_pct = wall minus idle+iowait (NO_HZ kernels
        # account idle time exactly, irq/softirq in idle count as busy); the split into
        # irq/softirq is tick-sampled.
        cw = rec["core_wall_s"]
        for c in ("c0", "c1"):
            rec[f"{c}_busy_pct"] = round(100.0 - 100.0 * rec[f"{c}_idle_ticks"] / hz / cw, 2)
            rec[f"{c}_busy_tick_pct"] = round(100.0 * rec[f"{c}_busy_ticks"] / hz / cw, 2)
            rec[f"{c}_softirq_pct"] = round(100.0 * (rec[f"{c}_softirq_ticks"] + rec[f"{c}_irq_ticks"]) / hz / cw, 2)
            rec[f"{c}_netrx_per_s"] = round(rec[f"{c}_netrx"] / cw, 1)
            if f"{c}_cal" in rec:  # IPIs this core received (function call + rescheduling)
                rec[f"{c}_ipi_per_s"] = round((rec[f"{c}_cal"] + rec[f"{c}_res"]) / cw, 1)
    ncpu = rec["ncpu"]
    others = rec["total_busy_ticks"] - rec.get("proc_ticks", 0) - rec.get("nginx_ticks", 0)
    others -= round(rec.get("client_cpu_s", 0.0) * hz)
    rec["others_pct_of_machine"] = round(max(0.0, 100.0 * others / hz / wall / ncpu), 1)
    accepts = rec.get("nginx_accepts")
    if isinstance(accepts, int):
        # one stub_status connection (the closing read) is inside the window
        rec["backend_conns_per_s"] = round((accepts - 1) / wall, 1)
    if rec.get("veth_tx") and rec.get("farm") == "remote":
        # packets halb's (or HAProxy's) end of the veth sent / received per check (nominal
        # 1,000 checks per second when nginx does not see them)
        checks = (rec.get("backend_conns_per_s") or rec.get("farm_servers", 1000)) * rec["core_wall_s"]
        rec["pkts_sent_per_check"] = round(rec["veth_tx"] / checks, 2)
        rec["pkts_received_per_check"] = round(rec["veth_rx"] / checks, 2)
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
    if "main_vctx_per_s" in rec:
        digest += f", control sleeps/s {rec['main_vctx_per_s']} preempted/s {rec['main_ivctx_per_s']}"
    if "c0_busy_pct" in rec:
        digest += (f", core0 busy {rec['c0_busy_pct']}% (irq+softirq {rec['c0_softirq_pct']}%, NET_RX {rec['c0_netrx_per_s']}/s)"
                   f", core1 busy {rec['c1_busy_pct']}% (NET_RX {rec['c1_netrx_per_s']}/s)"
                   f", IPIs received/s core0 {rec.get('c0_ipi_per_s')} core1 {rec.get('c1_ipi_per_s')}")
    if "pkts_sent_per_check" in rec:
        digest += f", packets/check sent {rec['pkts_sent_per_check']} received {rec['pkts_received_per_check']}"
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
