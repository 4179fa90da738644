#!/usr/bin/env python3
"""One measured run -> OUTDIR/runs/NAME-aATTEMPT.json, and a one-line digest on stdout.

usage: record.py OUTDIR key=value...   (keys: see run.sh's measure_once)
The generator's output (raw=FILE) is halb-loadtest's --json object, or wrk's text.
"""
import json
import os
import re
import sys


def wrk_result(text):
    """The numbers wrk prints: requests, req/s, errors (non-2xx/3xx + socket errors)."""
    out = {"requests_per_sec": None, "ok": None, "errors_total": 0}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if m:
        out["requests_per_sec"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+),", text, re.M)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        out["errors_total"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["errors_total"] += sum(int(x) for x in m.groups())
    if "requests" in out:
        out["ok"] = out["requests"] - out["errors_total"]
    return out


def main():
    outdir = sys.argv[1]
    kv = dict(a.split("=", 1) for a in sys.argv[2:])
    run = {k: kv[k] for k in ("name", "generator", "workload", "variant", "noise", "command")}
    for k in ("attempt", "kept", "round", "hz", "proxy_ticks", "proxy_sched_ns", "backend_ticks",
              "hwm_reset"):
        run[k] = int(kv[k])
    for k in ("wall_s", "client_cpu_s", "other_pct", "quiet_wait_s"):
        run[k] = float(kv[k])
    run["busy_before_pct"] = float(kv["busy_before_pct"] or 0)
    run["rss_peak_kib"] = int(kv["rss_peak_kib"]) if kv.get("rss_peak_kib") else None
    run["noise"] = run["noise"].strip().rstrip(";")
    text = open(kv["raw"], errors="replace").read()
    run["raw"] = os.path.relpath(kv["raw"], outdir)
    if run["generator"] == "wrk":
        run["result"] = wrk_result(text)
    else:
        try:
            run["result"] = json.loads(text)
        except ValueError:
            run["result"] = None
            run["failed"] = "no JSON from halb-loadtest: " + text[:200]
    run["proxy_cpu_s"] = run["proxy_ticks"] / run["hz"]
    path = os.path.join(outdir, "runs", f"{run['name']}-a{run['attempt']}.json")
    with open(path, "w") as f:
        json.dump(run, f, indent=1, sort_keys=True)
        f.write("\n")
    r = run["result"] or {}
    print(f"{run['name']} a{run['attempt']}: {r.get('requests_per_sec') or 0:,.0f}/s "
          f"{(r.get('bytes_per_sec') or 0) / 2**30:.3f} GiB/s errors={r.get('errors_total')} "
          f"proxy_cpu={run['proxy_cpu_s']:.2f}s rss_peak={run['rss_peak_kib']}KiB "
          f"other={run['other_pct']}% kept={run['kept']} {run['noise']}")


if __name__ == "__main__":
    main()
