#!/usr/bin/env python3
"""OUTDIR/runs/*.json -> summary.md (stdout), summary.json, plots/*.svg.

usage: summarize.py OUTDIR HALB_LOADTEST_BIN
Medians over the kept runs (a disturbed attempt that was measured again is not kept).
Ratios are halb / HAProxy: > 1 is more (throughput: better; p99, CPU, RSS: worse).
The TLS benchmark (bench-results/tls/lib/summarize.py) imports the helpers above main().
"""
import glob
import json
import os
import statistics
import subprocess
import sys

WORKLOADS = {
    "l4-bulk": ("L4 bulk", "mode tcp: keep-alive GETs of a large file, streamed through the proxy"),
    "l4-short": ("L4 short connections", "mode tcp: a new connection per request, GET /ok"),
    "l7-ka-small": ("L7 keep-alive, small", "mode http: keep-alive, GET /ok (3-byte body)"),
    "l7-ka-1k": ("L7 keep-alive, 1 KiB", "mode http: keep-alive, GET /1k (1024-byte body)"),
    "l7-close": ("L7 close", "mode http: a new connection per request, GET /ok"),
}
VARIANTS = ["direct", "haproxy", "halb"]
GIB = 2**30


def load(outdir):
    runs = []
    for path in sorted(glob.glob(os.path.join(outdir, "runs", "*.json"))):
        with open(path) as f:
            runs.append(json.load(f))
    return runs


def med(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(x, digits=3):
    if x is None:
        return "–"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}g}"


def cell(m, digits=3):
    if m is None:
        return "–"
    if m["n"] == 1 or m["min"] == m["max"]:
        return fmt(m["median"], digits)
    return f"{fmt(m['median'], digits)} [{fmt(m['min'], digits)}..{fmt(m['max'], digits)}]"


def metrics(run):
    """Per-run numbers; None where not applicable or not measured."""
    r = run.get("result") or {}
    bulk = run["workload"] == "l4-bulk"
    ok = r.get("ok") or 0
    requests = r.get("requests") or 0
    lat = r.get("latency_us") or {}
    cpu = run["proxy_cpu_s"] if run["variant"] != "direct" else None
    m = {
        "rps": r.get("requests_per_sec"),
        "gib_s": (r.get("bytes_per_sec") or 0) / GIB if bulk else None,
        "p50_ms": lat.get("p50", 0) / 1000 if lat else None,
        "p99_ms": lat.get("p99", 0) / 1000 if lat else None,
        "p999_ms": lat.get("p999", 0) / 1000 if lat else None,
        "errors": r.get("errors_total"),
        "error_share": (r.get("errors_total") or 0) / requests if requests else None,
        "cpu_pct": 100 * cpu / run["wall_s"] if cpu is not None and run["wall_s"] > 0 else None,
        "rss_mib": run["rss_peak_kib"] / 1024 if run.get("rss_peak_kib") and run["hwm_reset"] else None,
        "cpu_unit": None,
    }
    if cpu is not None:
        if bulk:
            gib = (r.get("bytes") or 0) / GIB
            m["cpu_unit"] = cpu / gib if gib else None
        else:
            m["cpu_unit"] = 1e6 * cpu / ok if ok else None
    return m


def table(runs):
    """{(workload, variant): {metric: med}}"""
    groups = {}
    for run in runs:
        if run["generator"] != "halb-loadtest" or run["workload"] not in WORKLOADS:
            continue
        groups.setdefault((run["workload"], run["variant"]), []).append(metrics(run))
    out = {}
    for key, ms in groups.items():
        out[key] = {k: med([m[k] for m in ms]) for k in ms[0]}
    return out


def median_run(runs, workload, variant):
    """The run whose throughput is the median of its group (for the plots)."""
    group = [r for r in runs if r["workload"] == workload and r["variant"] == variant
             and r["generator"] == "halb-loadtest" and r.get("result")]
    if not group:
        return None
    key = "bytes_per_sec" if workload == "l4-bulk" else "requests_per_sec"
    group.sort(key=lambda r: r["result"].get(key) or 0)
    return group[(len(group) - 1) // 2]


def ratio(t, workload, metric):
    a, b = t.get((workload, "halb"), {}).get(metric), t.get((workload, "haproxy"), {}).get(metric)
    if not a or not b or not b["median"]:
        return None
    return a["median"] / b["median"]


def times(x):
    """A ratio as the tables show it."""
    return f"**{x:.2f}×**" if x is not None else "–"


def read_env(outdir):
    """env.txt's text and its date_utc ("?" without one)."""
    path = os.path.join(outdir, "env.txt")
    env = open(path).read() if os.path.exists(path) else ""
    date = next((l.split("=", 1)[1] for l in env.splitlines() if l.startswith("date_utc=")), "?")
    return env, date


def write_json(outdir, summary):
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
        f.write("\n")


def plots_section(p, outdir, loadtest, runs, titles, variants, bars):
    """plots/WORKLOAD.svg (latency by percentile of each variant's median run, drawn by
    `halb-loadtest plot`) for each (workload, title), plots/ratios.svg from bars, and the
    line linking them."""
    os.makedirs(os.path.join(outdir, "plots"), exist_ok=True)
    plots = []
    for wl, title in titles:
        args = []
        for v in variants:
            run = median_run(runs, wl, v)
            if run is None:
                continue
            hist = os.path.join(outdir, "hist", f"{wl}-{v}-r{run['round']}.hgrm")
            if os.path.exists(hist):
                args.append(f"{v}={hist}")
        if not args:
            continue
        out = os.path.join(outdir, "plots", f"{wl}.svg")
        try:
            res = subprocess.run([loadtest, "plot", out, "--title", f"{title}: latency by percentile (median run)"]
                                 + args, capture_output=True, text=True)
            error = res.stderr.strip()[:200] if res.returncode else None
        except OSError as e:
            error = str(e)
        if error is None:
            plots.append(f"[{wl}](plots/{wl}.svg)")
        else:
            p(f"(plot for {wl} failed: {error})\n")
    if bars:
        with open(os.path.join(outdir, "plots", "ratios.svg"), "w") as f:
            f.write(bar_svg(bars))
        plots.insert(0, "[ratios](plots/ratios.svg)")
    if plots:
        p("Plots: " + ", ".join(plots) + ".\n")


def runs_section(p, outdir, runs, all_runs, broken_label):
    """## Runs: kept and disturbed runs, other processes' CPU, flagged and failed runs, and
    what could not run (raw/broken.txt, under broken_label)."""
    p("## Runs\n")
    p(f"- {len(runs)} kept runs; {len(all_runs) - len(runs)} disturbed attempts measured again.")
    noisy = [r for r in runs if r["noise"]]
    others = [r["other_pct"] for r in runs]
    if others:
        p(f"- CPU used by other processes during runs: median {statistics.median(others):.1f} %, "
          f"max {max(others):.1f} % of the machine.")
    p(f"- Kept runs still flagged (no time left to measure again): {len(noisy)}"
      + "".join(f"\n  - {r['name']}: {r['noise']}" for r in noisy))
    failed = [r for r in runs if r.get("failed") or (r.get("result") or {}).get("errors_total")]
    p(f"- Runs with errors or no result: {len(failed)}"
      + "".join(f"\n  - {r['name']}: {r.get('failed') or r['result'].get('errors')}" for r in failed))
    broken = os.path.join(outdir, "raw", "broken.txt")
    if os.path.exists(broken) and open(broken).read().strip():
        p(f"- {broken_label} that could not run:\n" + "".join(f"  - {l}\n" for l in open(broken).read().splitlines()))
    p("\nCommands: `commands.txt`; every run: `runs/*.json`; percentile files: `hist/`.")


def bar_svg(rows):
    """Grouped bars: per workload, halb/HAProxy for throughput, p99, CPU, RSS; a line at 1."""
    names = ["throughput", "p99", "CPU per unit", "peak RSS"]
    colours = ["#2ca02c", "#1f77b4", "#d62728", "#9467bd"]
    width, height, left, top, bottom = 900, 480, 70, 60, 90
    plot_h = height - top - bottom
    top_value = max([2.0] + [v for _, vals in rows for v in vals if v])
    top_value = float(int(top_value * 2 + 0.999)) / 2
    group_w = (width - left - 30) / max(1, len(rows))
    bar_w = group_w / (len(names) + 1.5)
    y = lambda v: top + plot_h * (1 - v / top_value)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width/2}" y="28" text-anchor="middle" font-size="16">'
             f'halb / HAProxy (median): above 1 = more</text>']
    step = 0.5
    v = 0.0
    while v <= top_value + 1e-9:
        parts.append(f'<line x1="{left}" x2="{width-30}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="{"#000" if abs(v-1) < 1e-9 else "#ddd"}" '
                     f'stroke-width="{1.5 if abs(v-1) < 1e-9 else 1}"/>')
        parts.append(f'<text x="{left-8}" y="{y(v)+4:.1f}" text-anchor="end">{v:.1f}</text>')
        v += step
    for g, (label, vals) in enumerate(rows):
        x0 = left + g * group_w + bar_w * 0.75
        for i, value in enumerate(vals):
            if value is None:
                continue
            x = x0 + i * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{bar_w*0.9:.1f}" '
                         f'height="{y(0)-y(value):.1f}" fill="{colours[i]}">'
                         f'<title>{label} {names[i]}: {value:.2f}</title></rect>')
            parts.append(f'<text x="{x+bar_w*0.45:.1f}" y="{y(value)-4:.1f}" text-anchor="middle" '
                         f'font-size="10">{value:.2f}</text>')
        parts.append(f'<text x="{left + g*group_w + group_w/2:.1f}" y="{height-bottom+18}" '
                     f'text-anchor="middle">{label}</text>')
    for i, n in enumerate(names):
        lx = left + i * 170
        parts.append(f'<rect x="{lx}" y="{height-40}" width="14" height="14" fill="{colours[i]}"/>')
        parts.append(f'<text x="{lx+20}" y="{height-28}">{n}</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)


def main():
    outdir, loadtest = sys.argv[1], sys.argv[2]
    all_runs = load(outdir)
    runs = [r for r in all_runs if r["kept"]]
    t = table(runs)
    env, date = read_env(outdir)
    p = print
    p(f"# Benchmark suite: direct / HAProxy / halb — {date}\n")
    p("Generated by `bench-results/suite/run.sh` (how to read it: `bench-results/README.md`). "
      "The proxy runs alone on its core; nginx and halb-loadtest share the other. Each cell is "
      "the median over the rounds, [min..max] when there are several. Proxy CPU is utime+stime "
      "of the proxy process (all threads) from /proc/PID/stat over the measured run; peak RSS is "
      "its VmHWM, reset before each run.\n")
    p("```\n" + env.strip() + "\n```\n")

    # ---- per workload
    summary = {"date": date, "workloads": {}, "generator_check": {}}
    p("## Results\n")
    for wl, (title, what) in WORKLOADS.items():
        if not any(k[0] == wl for k in t):
            continue
        bulk = wl == "l4-bulk"
        p(f"### {title}\n\n{what}.\n")
        thr = "GiB/s" if bulk else ("connections/s" if wl in ("l4-short", "l7-close") else "req/s")
        unit = "proxy CPU s/GiB" if bulk else ("proxy CPU µs/conn" if wl in ("l4-short", "l7-close") else "proxy CPU µs/req")
        lat = "p50 / p99 ms per fetch" if bulk else "p50 / p99 ms"
        p(f"| variant | {thr} | {lat} | {unit} | proxy core busy % | peak RSS MiB | errors | runs |")
        p("|---|---|---|---|---|---|---|---|")
        wsum = {}
        for v in VARIANTS:
            m = t.get((wl, v))
            if not m:
                continue
            main_metric = m["gib_s"] if bulk else m["rps"]
            p(f"| {v} | {cell(main_metric)} | {fmt(m['p50_ms']['median'] if m['p50_ms'] else None)} / "
              f"{cell(m['p99_ms'])} | {cell(m['cpu_unit'])} | {cell(m['cpu_pct'])} | {cell(m['rss_mib'])} | "
              f"{fmt(m['errors']['max'] if m['errors'] else None)} | {m['rps']['n'] if m['rps'] else 0} |")
            wsum[v] = {k: (x["median"] if x else None) for k, x in m.items()}
        summary["workloads"][wl] = {"variants": wsum}
        p("")

    # ---- ratios
    p("## halb / HAProxy\n")
    p("Medians divided. Throughput above 1 is better; p99, CPU and RSS below 1 are better.\n")
    p("| workload | throughput | p99 latency | proxy CPU per request (per GiB for bulk) | peak RSS |")
    p("|---|---|---|---|---|")
    bars = []
    for wl, (title, _) in WORKLOADS.items():
        if (wl, "halb") not in t or (wl, "haproxy") not in t:
            continue
        r = {
            "throughput": ratio(t, wl, "gib_s" if wl == "l4-bulk" else "rps"),
            "p99": ratio(t, wl, "p99_ms"),
            "cpu_unit": ratio(t, wl, "cpu_unit"),
            "rss": ratio(t, wl, "rss_mib"),
        }
        summary["workloads"][wl]["halb_over_haproxy"] = r
        p(f"| {title} | {times(r['throughput'])} | {times(r['p99'])} | {times(r['cpu_unit'])} | {times(r['rss'])} |")
        bars.append((title, [r["throughput"], r["p99"], r["cpu_unit"], r["rss"]]))
    p("")

    # ---- generator check
    gen = {}
    for run in runs:
        if run["workload"].startswith("gen-"):
            res = run.get("result") or {}
            gen.setdefault((run["workload"][4:], run["generator"]), []).append(res.get("requests_per_sec"))
    if gen:
        p("## Generator check: halb-loadtest vs wrk, straight to nginx\n")
        p(f"Same core, same connections, both against the same nginx. halb-loadtest must not be the "
          f"bottleneck of these benchmarks: ratio ≥ 1.\n")
        p("| mode | wrk req/s | halb-loadtest req/s | halb-loadtest / wrk |")
        p("|---|---|---|---|")
        for mode, label in (("ka", "keep-alive"), ("close", "close")):
            w, h = med(gen.get((mode, "wrk"), [])), med(gen.get((mode, "halb-loadtest"), []))
            if not w and not h:
                continue
            rr = h["median"] / w["median"] if w and h and w["median"] else None
            summary["generator_check"][mode] = {"wrk": w and w["median"], "halb_loadtest": h and h["median"], "ratio": rr}
            p(f"| {label} | {cell(w)} | {cell(h)} | {f'**{rr:.2f}×**' if rr else '–'} |")
        p("")

    # ---- plots
    plots_section(p, outdir, loadtest, runs, [(wl, title) for wl, (title, _) in WORKLOADS.items()], VARIANTS, bars)

    # ---- quietness and failures
    runs_section(p, outdir, runs, all_runs, "Variants")

    write_json(outdir, summary)


if __name__ == "__main__":
    main()
