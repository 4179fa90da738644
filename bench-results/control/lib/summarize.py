#!/usr/bin/env python3
"""Summarize a control-benchmark run: OUTDIR/windows.jsonl + states.jsonl + env.txt ->
OUTDIR/results.json (written) and summary.md (printed on stdout).

usage: summarize.py OUTDIR
"""
import json
import os
import statistics
import sys

LIMIT_PCT = 5.0  # the budget for the control core


def load_jsonl(path):
    out = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    return out


def stats(values):
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return None
    med = statistics.median(values)
    return {
        "n": len(values),
        "median": round(med, 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "mean": round(statistics.fmean(values), 4),
        "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "spread_pct": round(100.0 * (max(values) - min(values)) / med, 2) if med else None,
        "values": [round(v, 4) for v in values],
    }


def fmt(s, digits=2, unit=""):
    if not s:
        return "—"
    d = digits
    if s["n"] == 1:
        return f"{s['median']:.{d}f}{unit}"
    return f"{s['median']:.{d}f}{unit} [{s['min']:.{d}f}..{s['max']:.{d}f}]"


def main():
    outdir = sys.argv[1]
    windows = load_jsonl(os.path.join(outdir, "windows.jsonl"))
    states = load_jsonl(os.path.join(outdir, "states.jsonl"))
    profiles = load_jsonl(os.path.join(outdir, "profiles.jsonl"))
    env = {}
    envtxt = ""
    if os.path.exists(os.path.join(outdir, "env.txt")):
        envtxt = open(os.path.join(outdir, "env.txt"), encoding="utf-8").read()
        for line in envtxt.splitlines():
            k, _, v = line.partition("=")
            env[k] = v
    variants = []
    for w in windows:
        if w["variant"] not in variants:
            variants.append(w["variant"])
    halb_variants = [v for v in ("nochecks", "http", "tcp", "extchecks", "http-remote", "tcp-remote") if v in variants]
    ref_variants = [v for v in ("haproxy-http", "haproxy-tcp", "haproxy-http-remote", "haproxy-tcp-remote") if v in variants]
    checking = [v for v in ("http", "tcp", "http-remote", "tcp-remote") if v in halb_variants]
    load_variants = [v for v in halb_variants if not v.endswith("-remote")]  # *-remote: idle windows only

    idle = {v: [w for w in windows if w["kind"] == "idle" and w["variant"] == v] for v in variants}
    modes = [m for m in ("paced", "max") if any(w.get("mode") == m for w in windows)]
    load = {(v, m): [w for w in windows if w["kind"] == "load" and w["variant"] == v and w.get("mode") == m]
            for v in variants for m in modes}

    summary = {"control": {}, "shard": {}, "ratios": {}, "reference": {}, "farm": {}, "vs_haproxy": {}}
    # whole control core: busy % of the nochecks idle window of the same repetition (baseline)
    base_c0 = {w["rep"]: w["c0_busy_pct"] for w in idle.get("nochecks", []) if "c0_busy_pct" in w}
    base_c0_med = statistics.median(base_c0.values()) if base_c0 else None
    for v in halb_variants + ref_variants:
        ws = idle.get(v, [])
        key = "main_pct" if v in halb_variants else "proc_pct"
        per_check = []
        nominal = False
        for w in ws:
            if v in ("nochecks", "extchecks"):
                break  # halb checks nothing in these
            checks = w.get("backend_conns_per_s", 0) * w["wall_s"]
            if checks <= 0:
                # HAProxy's tcp checks never reach nginx's accept(): use the nominal rate
                checks, nominal = w.get("farm_servers", 1000) * w["wall_s"], True
            ticks = w["main_ticks"] if v in halb_variants else w["proc_ticks"]
            per_check.append(1e6 * ticks / w["hz"] / checks)
        block = {
            "control_pct": stats([w.get(key) for w in ws]),
            "control_sched_pct": stats([w.get("main_sched_pct") for w in ws]),
            "control_user_share_pct": stats([100.0 * w["main_user_ticks"] / w["main_ticks"]
                                             for w in ws if w.get("main_ticks")]),
            "other_threads_pct": stats([w.get("other_pct") for w in ws]) if v in halb_variants else None,
            "shard_idle_pct": stats([w.get("shard_pct") for w in ws]) if v in halb_variants else None,
            "process_pct": stats([w.get("proc_pct") for w in ws]),
            "nginx_pct": stats([w.get("nginx_pct") for w in ws]),
            "checks_per_s": stats([w.get("backend_conns_per_s") for w in ws]),
            "control_us_per_check": stats(per_check),
            # whole cores (idle windows): c0 = control core, c1 = shard core = remote farm core
            "core0_busy_pct": stats([w.get("c0_busy_pct") for w in ws]),
            "core0_net_pct": stats([w["c0_busy_pct"] - base_c0.get(w["rep"], base_c0_med)
                                    for w in ws if "c0_busy_pct" in w and base_c0_med is not None]),
            "core0_irq_softirq_pct": stats([w.get("c0_softirq_pct") for w in ws]),
            "core1_busy_pct": stats([w.get("c1_busy_pct") for w in ws]),
            "core0_netrx_per_s": stats([w.get("c0_netrx_per_s") for w in ws]),
            "core1_netrx_per_s": stats([w.get("c1_netrx_per_s") for w in ws]),
            "core0_ipi_per_s": stats([w.get("c0_ipi_per_s") for w in ws]),
            "core1_ipi_per_s": stats([w.get("c1_ipi_per_s") for w in ws]),
            "pkts_sent_per_check": stats([w.get("pkts_sent_per_check") for w in ws]),
            "pkts_received_per_check": stats([w.get("pkts_received_per_check") for w in ws]),
            "control_sleeps_per_s": stats([w.get("main_vctx_per_s") for w in ws]),
            "control_preempted_per_s": stats([w.get("main_ivctx_per_s") for w in ws]),
            "others_pct_of_machine": stats([w.get("others_pct_of_machine") for w in ws]),
            "per_check_at_nominal_rate": nominal,
            "noisy_windows": [f"rep {w['rep']}: {w['noisy']}" for w in ws if w.get("noisy")],
        }
        if v not in ("nochecks", "extchecks") and block["core0_net_pct"]:
            # µs of the whole control core per check (net of the nochecks baseline), at the
            # check rate of the window (nominal 1,000/s when nginx does not see the checks)
            block["core0_us_per_check_net"] = stats([
                (w["c0_busy_pct"] - base_c0.get(w["rep"], base_c0_med)) * 1e4 /
                (w.get("backend_conns_per_s") or w.get("farm_servers", 1000))
                for w in ws if "c0_busy_pct" in w])
        (summary["control"] if v in halb_variants else summary["reference"])[v] = block
    for v, m in ((v, m) for m in modes for v in load_variants):
        ws = load.get((v, m), [])
        summary["shard"].setdefault(m, {})[v] = {
            "shard_us_per_req": stats([w.get("shard_us_per_req") for w in ws]),
            "shard_sched_us_per_req": stats([w.get("shard_sched_us_per_req") for w in ws]),
            "process_us_per_req": stats([w.get("proc_us_per_req") for w in ws]),
            "req_per_s": stats([w.get("req_per_s") for w in ws]),
            "shard_wakeups_per_req": stats([w.get("shard_wakeups_per_req") for w in ws]),
            "control_pct_under_load": stats([w.get("main_pct") for w in ws]),
            "checks_per_s_under_load": stats([w.get("backend_conns_per_s") for w in ws]),
            "wrk_errors": sum(w.get("wrk_errors", 0) for w in ws),
            # requests the frontend counted beyond wrk's: up to `conns` per window are the
            # ones in flight when wrk stops (counted by halb, not by wrk)
            "extra_fe_requests": [(w.get("fe_requests_delta") or 0) - (w.get("requests") or 0) for w in ws],
            "conns": max((w.get("conns") or 0) for w in ws) if ws else 0,
            "noisy_windows": [f"rep {w['rep']}: {w['noisy']}" for w in ws if w.get("noisy")],
        }
    # (variant, baseline): halb's own checks vs none; the same check traffic made by
    # HAProxy next to halb (extchecks) vs none; halb's own checks vs HAProxy's
    pairs = [(v, b) for v, b in (("http", "nochecks"), ("tcp", "nochecks"), ("extchecks", "nochecks"),
                                 ("http", "extchecks"))
             if v in halb_variants and b in halb_variants]
    for m in modes:
        for v, bname in pairs:
            base = {w["rep"]: w for w in load.get((bname, m), [])}
            r = summary["ratios"].setdefault(m, {}).setdefault(f"{v}/{bname}", {})
            for metric in ("shard_us_per_req", "shard_sched_us_per_req", "req_per_s", "shard_wakeups_per_req"):
                ratios = [w[metric] / base[w["rep"]][metric] for w in load[(v, m)]
                          if w["rep"] in base and w.get(metric) and base[w["rep"]].get(metric)]
                r[metric] = stats(ratios)
            b = summary["shard"][m][bname]["shard_us_per_req"]
            c = summary["shard"][m][v]["shard_us_per_req"]
            if b and c:
                r["ratio_of_medians"] = round(c["median"] / b["median"], 4)
    for v in variants + sorted({s.get("variant") for s in states} - set(variants)):
        ss = [s for s in states if s.get("variant") == v]
        summary["farm"][v] = {
            "servers": max((s.get("servers") or 0) for s in ss) if ss else None,
            "min_up": min((s.get("by_state", {}).get("UP", 0)) for s in ss) if ss else None,
            "not_up": sorted({k for s in ss for k in s.get("by_state", {}) if k != "UP"}),
            "check_failures_max": max((s.get("check_failures") or 0) for s in ss) if ss else None,
            "down_transitions_max": max((s.get("down_transitions") or 0) for s in ss) if ss else None,
            "last_check_max_ms": max((s.get("last_check_max_ms") or 0) for s in ss) if ss else None,
            "last_checks_seen": sorted({k for s in ss for k in (s.get("last_checks") or {})}),
            "errors": sorted({s["error"] for s in ss if s.get("error")}),
            "generations": sorted({s["generation"] for s in ss if s.get("generation") is not None}),
        }

    # halb vs HAProxy (same check type, same farm): control thread % (HAProxy: whole process),
    # whole control core net of the nochecks baseline; ratio of medians and per repetition
    for v in checking:
        ref = "haproxy-" + v
        if ref not in ref_variants:
            continue
        h, r = idle[v], idle[ref]
        out = {}
        for name, hk, rk in (("control_pct", "main_pct", "proc_pct"), ("core0_net_pct", None, None)):
            if hk:
                hv = {w["rep"]: w[hk] for w in h}
                rv = {w["rep"]: w[rk] for w in r}
            else:
                hv = {w["rep"]: w["c0_busy_pct"] - base_c0.get(w["rep"], base_c0_med) for w in h if "c0_busy_pct" in w and base_c0_med is not None}
                rv = {w["rep"]: w["c0_busy_pct"] - base_c0.get(w["rep"], base_c0_med) for w in r if "c0_busy_pct" in w and base_c0_med is not None}
            if not hv or not rv:
                continue
            hm, rm = statistics.median(hv.values()), statistics.median(rv.values())
            out[name] = {
                "halb_median": round(hm, 3), "haproxy_median": round(rm, 3),
                "ratio_of_medians": round(hm / rm, 3) if rm else None,
                "per_rep_ratio": stats([hv[k] / rv[k] for k in hv if k in rv and rv[k]]),
            }
        summary["vs_haproxy"][v] = out

    # verdicts
    verdicts = {}
    base_ctl = summary["control"].get("nochecks", {}).get("control_pct")
    for v in checking:
        c = summary["control"].get(v, {}).get("control_pct")
        if c:
            c0 = summary["control"][v].get("core0_net_pct")
            verdicts[f"control_{v}"] = {
                "median_pct": c["median"],
                "max_pct": c["max"],
                "net_of_nochecks_pct": round(c["median"] - (base_ctl["median"] if base_ctl else 0), 3),
                "under_5_pct": c["median"] < LIMIT_PCT,
                "every_window_under_5_pct": c["max"] < LIMIT_PCT,
                "core0_net_median_pct": c0["median"] if c0 else None,
                "core0_net_max_pct": c0["max"] if c0 else None,
                "core0_net_under_5_pct": (c0["median"] < LIMIT_PCT) if c0 else None,
            }
    for m in modes:
        for pair in summary["ratios"].get(m, {}):
            bname = pair.split("/")[1]
            r = summary["ratios"][m][pair].get("shard_us_per_req")
            b = summary["shard"][m].get(bname, {}).get("shard_us_per_req")
            if not (r and b):
                continue
            noise = b["spread_pct"] or 0.0
            change = 100.0 * (summary["ratios"][m][pair]["ratio_of_medians"] - 1.0)
            within = None if r["n"] < 2 else (r["min"] <= 1.0 <= r["max"] or abs(change) <= noise)
            verdicts[f"shard_{pair}_{m}"] = {
                "change_pct_of_medians": round(change, 2),
                "per_rep_ratio_median": r["median"],
                "per_rep_ratio_min": r["min"],
                "per_rep_ratio_max": r["max"],
                "baseline_spread_pct": noise,
                "within_noise": within,
            }
    summary["verdicts"] = verdicts

    result = {"env": env, "summary": summary, "windows": windows, "states": states, "profiles": profiles}
    with open(os.path.join(outdir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, sort_keys=True)

    # ------------------------------------------------------------------ markdown
    p = print
    quick = "QUICK=1" in env.get("knobs", "")
    nserv = next((summary["farm"][v].get("servers") for v in checking if summary["farm"].get(v, {}).get("servers")), "?")
    p(f"# Control thread: health checks of {nserv} servers at inter = 1s")
    p()
    p(f"Run {env.get('date_utc', '?')}{' — **QUICK=1 smoke run** (short windows, 1 repetition): indicative only' if quick else ''}. "
      f"{env.get('cpu_model', '')} ({env.get('ncpu', '')}), {env.get('kernel', '')}; halb {env.get('git_head', '?')}.")
    p()
    p(f"Load average at start: {env.get('load_start', '?')} (1-min load before waiting {env.get('load_before_wait', '?')}, waited "
      f"{env.get('load_wait_s', '0')} s for it to fall below {env.get('load_max', '?')}: "
      f"{'reached' if env.get('load_ok') == '1' else '**not reached, measured anyway**'}); at end: {env.get('load_end', '?')}. "
      f"rustc processes at start / end: {env.get('rustc_at_start', '?')} / {env.get('rustc_at_end', '?')}.")
    p()
    p("## Results (medians [min..max] over the repetitions)")
    p()
    p("### Control core, idle (no traffic)")
    p()
    p("Farm `loopback`: nginx on core 0, 127.0.1.x. Farm `remote`: nginx in a network namespace behind a veth "
      "pair, pinned to core 1, the farm end's receive processing steered to core 1 (RPS), halb's end's to core 0.")
    p()
    p("| variant | farm | control thread % of a core | (schedstat) | user share | µs CPU per check | checks/s (nginx accepts) | other halb threads % | nginx % | under 5 %? |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    def where(v):
        return "remote" if v.endswith("-remote") else "loopback"
    for v in halb_variants:
        c = summary["control"][v]
        ok = ""
        if v in checking:
            vd = verdicts.get(f"control_{v}", {})
            ok = "**yes**" if vd.get("under_5_pct") else "**NO**"
        p(f"| halb {v} | {where(v)} | {fmt(c['control_pct'])} | {fmt(c['control_sched_pct'])} | {fmt(c['control_user_share_pct'], 0, ' %')} | {fmt(c['control_us_per_check'], 1)} | "
          f"{fmt(c['checks_per_s'], 0)} | {fmt(c['other_threads_pct'])} | {fmt(c['nginx_pct'])} | {ok} |")
    for v in ref_variants:
        c = summary["reference"][v]
        cps = fmt(c['checks_per_s'], 0) if (c['checks_per_s'] or {}).get("max") else "not seen by nginx¹"
        pc = fmt(c['control_us_per_check'], 1) + (" (at 1,000/s)" if c.get("per_check_at_nominal_rate") else "")
        p(f"| {v} (reference, whole process) | {where(v)} | {fmt(c['control_pct'])} | {fmt(c['control_sched_pct'])} | {fmt(c['control_user_share_pct'], 0, ' %')} | {pc} | "
          f"{cps} | — | {fmt(c['nginx_pct'])} | |")
    if any(not (summary["reference"][v]['checks_per_s'] or {}).get("max") for v in ref_variants):
        p()
        p("¹ HAProxy's tcp check resets the connection before nginx accepts it, so nginx's `accepts` "
          "does not count it (its stats show every server checked and UP).")
    p()
    has_cores = any("c0_busy_pct" in w for w in windows)
    if has_cores:
        p("#### Whole cores during the idle windows")
        p()
        p("Core 0 busy = wall time minus idle+iowait of core 0 (/proc/stat; exact on this NO_HZ kernel), i.e. "
      "everything core 0 did: the control thread, interrupts and softirqs whoever they were for (the receive "
      "processing of halb's end of the veth in the remote setup), the loopback farm's nginx (loopback setup), "
      "this script. *Net* = minus the `nochecks` window of the same repetition. The remote rows are the "
      "control core's full cost of the checks; the loopback rows include the farm's nginx and are not.")
        p()
        p("| variant | core 0 busy % | core 0 net of nochecks % | µs of core 0 per check (net) | core 0 irq+softirq % (tick-sampled) | NET_RX softirqs/s core 0 | core 1 busy % | NET_RX softirqs/s core 1 | IPIs received/s core 0 | IPIs received/s core 1 | packets sent / received per check (veth) | control thread sleeps/s | preempted/s | other processes, % of machine |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for v in halb_variants + ref_variants:
            c = summary["control"].get(v) or summary["reference"].get(v)
            name = f"halb {v}" if v in halb_variants else v
            p(f"| {name} | {fmt(c['core0_busy_pct'])} | {fmt(c['core0_net_pct']) if v != 'nochecks' else '(baseline)'} | "
              f"{fmt(c.get('core0_us_per_check_net'), 1)} | {fmt(c['core0_irq_softirq_pct'])} | {fmt(c['core0_netrx_per_s'], 0)} | "
              f"{fmt(c['core1_busy_pct'])} | {fmt(c['core1_netrx_per_s'], 0)} | {fmt(c['core0_ipi_per_s'], 0)} | {fmt(c['core1_ipi_per_s'], 0)} | "
              f"{(fmt(c['pkts_sent_per_check']) + ' / ' + fmt(c['pkts_received_per_check'])) if c.get('pkts_sent_per_check') else '—'} | {fmt(c['control_sleeps_per_s'], 0)} | "
              f"{fmt(c['control_preempted_per_s'], 0)} | {fmt(c['others_pct_of_machine'], 1)} |")
    p()
    if summary["vs_haproxy"]:
        p("#### halb vs HAProxy (same checks, same farm)")
        p()
        p("| checks | farm | halb control thread % | HAProxy process % | halb / HAProxy (medians) | per repetition | "
          "core 0 net %: halb | HAProxy | halb / HAProxy | per repetition |")
        p("|---|---|---|---|---|---|---|---|---|---|")
        for v, o in summary["vs_haproxy"].items():
            a, b = o.get("control_pct"), o.get("core0_net_pct")
            if not a:
                continue
            p(f"| {v.split('-')[0]} | {where(v)} | {a['halb_median']:.2f} | {a['haproxy_median']:.2f} | {a['ratio_of_medians']} | "
              f"{fmt(a['per_rep_ratio'], 3)} | "
              + (f"{b['halb_median']:.2f} | {b['haproxy_median']:.2f} | {b['ratio_of_medians']} | {fmt(b['per_rep_ratio'], 3)} |" if b else "— | — | — | — |"))
        p()
    if profiles:
        p("#### Profile of the checking thread (perf, outside the measured windows)")
        p()
        p("`perf record -g -t TID` of halb's control thread / HAProxy's thread, after the idle window; share of "
          "the samples per bucket (lib/perf_buckets.py): `ipi_send` = sending an inter-processor interrupt "
          "(a VM exit on this KVM guest), `irq entry/exit` = samples landing at interrupt exit / handle_softirqs "
          "(time with interrupts off, e.g. the delivery of an IPI to the vCPU), `server half` = the listener's "
          "side of the handshake (SYN, child socket, accept; a lower bound of the server's share), "
          "`context switch` = finish_task_switch.")
        p()
        cols = ["kernel_other", "user", "server_half", "context_switch", "ipi_send", "irq_entry_exit"]
        p("| variant | rep | samples | kernel, checker's own | user | server half (listener) | context switch | IPI send | irq entry/exit | top leaf symbols |")
        p("|---|---|---|---|---|---|---|---|---|---|")
        for pr in profiles:
            b = pr.get("buckets_pct", {})
            top = ", ".join(f"{k} {v}" for k, v in pr.get("top_leaves_pct", [])[:4])
            p(f"| {pr.get('variant')} | {pr.get('rep')} | {pr.get('samples')} | " + " | ".join(f"{b.get(c, 0.0):.1f} %" for c in cols) + f" | {top} |")
        p()
    p("### Shard CPU per request under load (wrk against the frontend, checks running)")
    p()
    p("`paced`: every wrk connection waits 1 ms after each response (same offered load in every variant); "
      "`max`: closed loop, core 0 (wrk + nginx + control thread) saturated, so checks take load-generator "
      "time and req/s drops.")
    p()
    p("`extchecks` = halb without checks while HAProxy (pinned to core 0 too) checks the same 1,000 servers "
      "over HTTP: the same check traffic next to the shard, made by another process.")
    p()
    p("| load | variant | shard µs CPU / request | (schedstat) | shard wakeups / request | req/s | control thread % during load | checks/s during load | wrk errors |")
    p("|---|---|---|---|---|---|---|---|---|")
    for m in modes:
        for v in load_variants:
            s = summary["shard"][m][v]
            p(f"| {m} | halb {v} | {fmt(s['shard_us_per_req'], 3)} | {fmt(s['shard_sched_us_per_req'], 3)} | "
              f"{fmt(s['shard_wakeups_per_req'], 3)} | {fmt(s['req_per_s'], 0)} | "
              f"{fmt(s['control_pct_under_load'])} | {fmt(s['checks_per_s_under_load'], 0)} | {s['wrk_errors']} |")
    p()
    p("Ratios per repetition (each window against the baseline window of the same repetition), "
      "median [min..max]:")
    p()
    p("| load | ratio | shard µs / request | (schedstat) | shard wakeups / request | req/s | ratio of medians | baseline's own spread | verdict |")
    p("|---|---|---|---|---|---|---|---|---|")
    for m in modes:
        for pair, r in summary["ratios"].get(m, {}).items():
            vd = verdicts.get(f"shard_{pair}_{m}", {})
            verdict = ("n/a (one repetition)" if vd.get("within_noise") is None else
                       "no measurable change" if vd.get("within_noise") else "**measurable change**")
            p(f"| {m} | {pair} | {fmt(r['shard_us_per_req'], 3)} | {fmt(r['shard_sched_us_per_req'], 3)} | "
              f"{fmt(r['shard_wakeups_per_req'], 3)} | {fmt(r['req_per_s'], 3)} | "
              f"{r.get('ratio_of_medians', '—')} ({vd.get('change_pct_of_medians', 0):+.1f} %) | "
              f"{vd.get('baseline_spread_pct', '—')} % | {verdict} |")
    p()
    p("Verdict rule: a change is \"measurable\" when the per-repetition ratios do not straddle 1.0 "
      "and the change of the medians exceeds the baseline's own run-to-run spread (max−min)/median.")
    p()
    p("### Verdict")
    p()
    for v in checking:
        vd = verdicts.get(f"control_{v}")
        if vd:
            line = (f"- {v.split('-')[0]} checks, {where(v)} farm, 1,000 servers × 1 s: control thread **{vd['median_pct']:.2f} %** of a core (median; "
                    f"max {vd['max_pct']:.2f} %; {vd['net_of_nochecks_pct']:.2f} % net of the nochecks baseline) → "
                    + ("**under** the 5 % budget" if vd["under_5_pct"] else "**ABOVE** the 5 % budget"))
            if v.endswith("-remote") and vd.get("core0_net_median_pct") is not None:
                line += (f"; whole control core, net: **{vd['core0_net_median_pct']:.2f} %** (max {vd['core0_net_max_pct']:.2f} %) → "
                         + ("**under**" if vd["core0_net_under_5_pct"] else "**ABOVE**") + " 5 %")
            p(line)
    p()
    p("## Farm state (stats JSON, before and after each halb window pair)")
    p()
    p("| variant | servers | fewest UP | other states seen | check_failures (max) | down transitions (max) | slowest last check | halb snapshot generations seen | last-check texts |")
    p("|---|---|---|---|---|---|---|---|---|")
    for v in summary["farm"]:
        f = summary["farm"][v]
        p(f"| {v} | {f['servers']} | {f['min_up']} | {', '.join(f['not_up']) or '—'} | {f['check_failures_max']} | "
          f"{f['down_transitions_max']} | {f['last_check_max_ms']} ms | {', '.join(map(str, f['generations'])) or '—'} | "
          f"{'; '.join(f['last_checks_seen'])[:160]} |")
    errs = [e for v in summary["farm"] for e in summary["farm"][v]["errors"]]
    if errs:
        p()
        p("State errors: " + "; ".join(sorted(set(errs))))
    p()
    p("## Quietness")
    p()
    noisy = [(v, n) for v in halb_variants + ref_variants
             for n in (summary["control"].get(v) or summary["reference"].get(v) or {}).get("noisy_windows", [])]
    noisy += [(f"{v} {m}", n) for m in modes for v in load_variants for n in summary["shard"][m][v]["noisy_windows"]]
    extra = [x for m in modes for v in load_variants for x in summary["shard"][m][v]["extra_fe_requests"]]
    conns = max([summary["shard"][m][v]["conns"] for m in modes for v in load_variants] or [0])
    others = [w["others_pct_of_machine"] for w in windows]
    p(f"- Other processes during the windows: median {statistics.median(others) if others else 0:.1f} %, "
      f"max {max(others) if others else 0:.1f} % of the machine.")
    p(f"- Noisy windows (quiet gate failed, rustc running, or others > {windows[0].get('noise_max_pct', 10) if windows else 10} %): "
      + ("none" if not noisy else "; ".join(f"{v} {n}" for v, n in noisy)))
    p(f"- Requests the frontend counted beyond wrk's, per load window: {extra} (up to {conns} are requests in flight when wrk stops; "
      + ("more would be foreign traffic: **some window got foreign traffic**)" if any(x > conns for x in extra) else "no foreign traffic)"))
    p(f"- Placement: {env.get('placement_ok', '?')} {'(control thread on core 0, shard threads on core 1 in every start)' if env.get('placement_ok', '').startswith('1') else ''}")
    p()
    p("## Environment")
    p()
    p("```")
    p(envtxt.rstrip())
    p("```")
    cmds = os.path.join(outdir, "commands.txt")
    if os.path.exists(cmds):
        p()
        p("## Commands")
        p()
        p("```")
        p(open(cmds, encoding="utf-8").read().rstrip())
        p("```")
    tfiles = sorted(os.listdir(os.path.join(outdir, "raw", "threads"))) if os.path.isdir(os.path.join(outdir, "raw", "threads")) else []
    if tfiles:
        p()
        p(f"## halb threads (raw/threads/{tfiles[0]})")
        p()
        p("```")
        p(open(os.path.join(outdir, "raw", "threads", tfiles[0]), encoding="utf-8").read().rstrip())
        p("```")
    fails = os.path.join(outdir, "raw", "failures.txt")
    if os.path.exists(fails):
        p()
        p("## Failures")
        p()
        p("```")
        p(open(fails, encoding="utf-8").read().rstrip())
        p("```")


if __name__ == "__main__":
    main()
