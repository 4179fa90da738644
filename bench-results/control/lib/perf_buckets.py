#!/usr/bin/env python3
"""Where the checking thread's time goes: buckets of a `perf record -g -t TID` profile.

usage: perf_buckets.py OUTDIR PERF_DATA variant=V rep=N secs=S [key=value ...]
Appends one JSON line to OUTDIR/profiles.jsonl and prints a digest. Buckets (first match,
by the sample's call chain, leaf first):
  ipi_send         a frame sends an inter-processor interrupt (x2apic_send_IPI, ...): on this
                   KVM guest the ICR write is a VM exit, charged to the sending thread
  irq_entry_exit   the leaf is interrupt entry/exit or handle_softirqs itself: with a
                   timer-based sampler (no PMU in the guest) samples taken while interrupts
                   were disabled land here, e.g. the delivery of an IPI to the vCPU
  server_half      a frame is the *listener's* side of a TCP exchange (SYN handling, child
                   socket creation, accept): on loopback it runs in the checker's context
  context_switch   the leaf is finish_task_switch (switching in/out, e.g. after preemption)
  user             the leaf is not in the kernel
  kernel_other     everything else in the kernel (the checker's own TCP work, io_uring, timers)
"""
import collections
import json
import os
import subprocess
import sys

IPI_SEND = {"x2apic_send_IPI", "__x2apic_send_IPI_dest", "kvm_send_ipi_mask", "native_send_call_func_single_ipi",
            "native_smp_send_reschedule", "arch_send_call_function_single_ipi"}
IRQ_LEAF = {"handle_softirqs", "__irq_exit_rcu", "irq_exit_rcu", "__do_softirq"}
SERVER = {"tcp_conn_request", "tcp_v4_syn_recv_sock", "tcp_check_req", "tcp_child_process", "inet_csk_accept",
          "tcp_v4_send_synack", "inet_csk_complete_hashdance", "tcp_create_openreq_child"}


def main():
    outdir, data = sys.argv[1], sys.argv[2]
    rec = {}
    for arg in sys.argv[3:]:
        k, _, v = arg.partition("=")
        rec[k] = v
    out = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,dso", "--no-inline"],
                         capture_output=True, text=True, timeout=300).stdout
    buckets, leaves = collections.Counter(), collections.Counter()
    n = 0
    for block in out.strip().split("\n\n"):
        frames = []
        for line in block.strip().split("\n"):
            parts = line.split(None, 1)
            if len(parts) < 2:
                continue
            rest = parts[1]
            sym, _, dso = rest.rpartition(" (")
            frames.append((sym.split("+")[0].strip(), dso.rstrip(")")))
        if not frames:
            continue
        n += 1
        leaf, leaf_dso = frames[0]
        names = {f[0] for f in frames}
        kernel = "kernel" in leaf_dso
        leaves[(leaf if leaf != "[unknown]" else f"[unknown] ({leaf_dso})")] += 1
        if names & IPI_SEND:
            b = "ipi_send"
        elif kernel and (leaf in IRQ_LEAF or leaf.startswith(("sysvec_", "asm_sysvec_"))):
            b = "irq_entry_exit"
        elif names & SERVER:
            b = "server_half"
        elif kernel and leaf.startswith("finish_task_switch"):
            b = "context_switch"
        elif not kernel:
            b = "user"
        else:
            b = "kernel_other"
        buckets[b] += 1
    rec["samples"] = n
    rec["buckets_pct"] = {k: round(100.0 * v / n, 1) for k, v in buckets.most_common()} if n else {}
    rec["top_leaves_pct"] = [[k, round(100.0 * v / n, 1)] for k, v in leaves.most_common(12)] if n else []
    with open(os.path.join(outdir, "profiles.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")
    print(f"profile {rec.get('variant')} rep {rec.get('rep')}: {n} samples, " +
          ", ".join(f"{k} {v}%" for k, v in rec["buckets_pct"].items()))


if __name__ == "__main__":
    main()
