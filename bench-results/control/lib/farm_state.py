#!/usr/bin/env python3
"""State of the 1,000-server farm (and the frontend's request counter), outside the
measured windows.

usage: farm_state.py halb URL            (halb's /stats;json)
       farm_state.py haproxy SOCKET      (HAProxy's `show stat`)
Prints one JSON object: servers, by_state {UP: n, ...}, check_failures (sum),
down_transitions (sum), last_checks {text pattern: n} (halb), fe_requests (halb).
"""
import collections
import json
import re
import socket
import sys
import urllib.request


def halb(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        report = json.load(r)
    out = {"generation": report.get("info", {}).get("generation")}
    fe = [f for f in report.get("frontends", []) if f.get("name") == "fe"]
    if fe:
        out["fe_requests"] = fe[0]["counters"].get("http_requests")
    farm = [b for b in report.get("backends", []) if b.get("name") == "farm"]
    if not farm:
        out["error"] = "no backend farm in the report"
        return out
    servers = farm[0].get("servers", [])
    out["servers"] = len(servers)
    out["usable_servers"] = farm[0].get("usable_servers")
    out["by_state"] = dict(collections.Counter(s.get("state") for s in servers))
    out["checked"] = sum(1 for s in servers if s.get("checked"))
    out["check_failures"] = sum(s.get("check_failures") or 0 for s in servers)
    out["down_transitions"] = sum(s.get("down_transitions") or 0 for s in servers)
    # "L7 status 200 in 0 ms" -> "L7 status 200 in N ms": group by shape, keep the max time
    shapes = collections.Counter()
    worst_ms = 0
    for s in servers:
        lc = s.get("last_check") or "none"
        m = re.search(r" in (\d+) ms$", lc)
        if m:
            worst_ms = max(worst_ms, int(m.group(1)))
        shapes[re.sub(r"\d+ ms$", "N ms", lc)] += 1
    out["last_checks"] = dict(shapes)
    out["last_check_max_ms"] = worst_ms
    return out


def haproxy(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b"show stat\n")
    data = b""
    while True:
        x = s.recv(65536)
        if not x:
            break
        data += x
    lines = data.decode().splitlines()
    head = lines[0].lstrip("# ").split(",")
    col = {h: i for i, h in enumerate(head)}
    rows = [l.split(",") for l in lines[1:] if l.startswith("farm,")]
    rows = [r for r in rows if r[1] not in ("FRONTEND", "BACKEND")]
    status = collections.Counter(r[col["status"]] for r in rows)
    checks = collections.Counter(r[col["check_status"]] for r in rows)
    return {
        "servers": len(rows),
        "by_state": dict(status),
        "check_failures": sum(int(r[col["chkfail"]] or 0) for r in rows),
        "down_transitions": sum(int(r[col["chkdown"]] or 0) for r in rows),
        "last_checks": dict(checks),
    }


def main():
    kind, where = sys.argv[1], sys.argv[2]
    try:
        out = halb(where) if kind == "halb" else haproxy(where)
    except Exception as e:  # report, do not stop the benchmark
        out = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
