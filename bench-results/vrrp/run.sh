#!/usr/bin/env bash
# VRRP failover benchmark: halb vs Keepalived, in private network namespaces (root only;
# nothing is created in the root namespace, every process is killed by PID on exit, the
# whole run is bounded by a watchdog).
#
#   lb1 (10.99.0.11, priority 101) and lb2 (10.99.0.12, priority 100) share VIP
#   10.99.0.100/24 (VRID 51, VRRPv3); each answers HTTP on VIP:80 with its name (Keepalived
#   boxes: a responder on 0.0.0.0:80; halb boxes: halb's frontend on VIP:80 -> a local
#   responder); the client (10.99.0.2) probes VIP:80 with a new connection every 10 ms
#   (lib/probe.py); the bridge is captured (VRRP + ARP), and `ip -ts monitor address` runs
#   in both lbs.
#
# MODE=failover: for each IMPL and ADVERT, REPEATS runs of: kill -9 of the master box
#   (halb: SIGKILL, proxy and VRRP are one process; Keepalived: its VRRP child frozen then
#   both keepalived processes and the box's responder SIGKILLed — a plain SIGKILL of
#   keepalived's main process makes the child leave politely with a priority-0 advert,
#   which is not a failure) -> first successful client request through the VIP (answered
#   by lb2). The VIP stays configured on the dead box in both cases, as after a real crash.
#   JSON lines + a summary with median and max.
# MODE=saturate: advert_int SAT_ADVERT (10 ms) for SAT_SECONDS (60) while the client
#   saturates the master's data plane through the VIP (wrk, else lib/loadgen.py): counts
#   false failovers (the backup adding the VIP — `ip monitor` in lb2 — and adverts sent by
#   the backup — pcap) and the master's advert gaps, then measures one failover at 10 ms.
# MODE=all: both.
#
# Env: IMPLS="halb keepalived"  ADVERTS="1 0.1"  REPEATS=20  VERSION=3
#      SAT_ADVERT=0.01 SAT_SECONDS=60 SAT_REPEATS=1 SAT_CONNS=64 SAT_THREADS=2 SAT_PATH=/load
#      PROBE_INTERVAL=0.01 PROBE_TIMEOUT=0.2 POST_S=1 MAX_RUNTIME=5400
#      QUICK=1 (smoke: REPEATS=2, SAT_SECONDS=5)  OUTDIR=bench-results/vrrp/results/<date>
#      HALB=path/to/halb (default target/release/halb, else target/debug/halb)
#      Pinning (2-core box): CONTROL_CORE=1 (halb's control thread, keepalived),
#      DATA_CORE=0 (halb's shard, HAProxy/responders, the client: wrk and the prober)
# Needs: iproute2, keepalived, tcpdump, python3; wrk for the saturate mode (else the
# slower Python fallback is used: apt-get install wrk).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LIB=$HERE/lib
# shellcheck source=bench-results/vrrp/lib/common.sh
source "$LIB/common.sh"

((EUID == 0)) || die "run as root (network namespaces, raw VRRP sockets)"
MODE=${MODE:-failover}
QUICK=${QUICK:-0}
IMPLS=${IMPLS:-"halb keepalived"}
ADVERTS=${ADVERTS:-"1 0.1"}
VERSION=${VERSION:-3}
if ((QUICK)); then REPEATS=${REPEATS:-2}; SAT_SECONDS=${SAT_SECONDS:-5}; fi
REPEATS=${REPEATS:-20}
SAT_ADVERT=${SAT_ADVERT:-0.01} SAT_SECONDS=${SAT_SECONDS:-60} SAT_REPEATS=${SAT_REPEATS:-1}
SAT_CONNS=${SAT_CONNS:-64} SAT_THREADS=${SAT_THREADS:-2} SAT_PATH=${SAT_PATH:-/load}
PROBE_INTERVAL=${PROBE_INTERVAL:-0.01} PROBE_TIMEOUT=${PROBE_TIMEOUT:-0.2} POST_S=${POST_S:-1}
MAX_RUNTIME=${MAX_RUNTIME:-5400}
CONTROL_CORE=${CONTROL_CORE:-1} DATA_CORE=${DATA_CORE:-0}
export CONTROL_CORE DATA_CORE
VIP=$NET.100 VRID=51
OUTDIR=${OUTDIR:-$HERE/results/$(date +%Y-%m-%d-%H%M%S)}
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
export PYTHON LIB MAX_RUNTIME SAT_PATH

for t in ip keepalived tcpdump "$PYTHON"; do
  command -v "$t" >/dev/null || die "$t not found (apt-get install iproute2 keepalived tcpdump python3)"
done
if [[ $IMPLS == *halb* ]]; then
  HALB=${HALB:-}
  if [[ -z $HALB ]]; then
    if [[ -x $ROOT/target/release/halb ]]; then HALB=$ROOT/target/release/halb
    elif [[ -x $ROOT/target/debug/halb ]]; then HALB=$ROOT/target/debug/halb; fi
  fi
  [[ -n $HALB && -x $HALB ]] || die "no halb binary: cargo build --release (or set HALB=)"
  export HALB
fi
ulimit -l 65536 2>/dev/null || true   # io_uring rings of halb's shards

mkdir -p "$OUTDIR"
RESULTS=$OUTDIR/results.jsonl
start_watchdog "$MAX_RUNTIME"
on_exit netns_teardown

plugin() { # plugin IMPL: load the VRRP plugin functions of IMPL
  case $1 in
    halb) source "$LIB/vrrp-halb.sh" ;;
    keepalived) source "$LIB/vrrp-keepalived.sh" ;;
    *) die "unknown IMPL $1 (halb or keepalived)" ;;
  esac
}

# bring_up IMPL ADVERT RUNDIR CAPTURE_FILTER: LAN, capture, monitors, data planes, lb1 then
# lb2; leaves K1 K2 (VRRP pids) and PIDS (everything, to stop at the end of the run)
bring_up() {
  local impl=$1 adv=$2 rd=$3 filter=$4 p settle
  ( netns_setup ) >"$rd/netns.log" 2>&1 || die "netns setup failed: $(tail -3 "$rd/netns.log")"
  PIDS=() DP1=()
  ip netns exec "$NS_SW" tcpdump -i br0 -n --immediate-mode -U -s 256 -Z root \
      -w "$rd/capture.pcap" "$filter" 2>"$rd/tcpdump.log" &
  p=$!; PIDS+=("$p"); register_pid "$p"
  for _ in $(seq 100); do grep -q listening "$rd/tcpdump.log" && break; sleep 0.05; done
  for n in lb1 lb2; do
    local ns=$NS_PREFIX-$n
    ip -n "$ns" -ts monitor address >"$rd/ipmon-$n.log" 2>&1 &
    p=$!; PIDS+=("$p"); register_pid "$p"
    while read -r p; do
      PIDS+=("$p"); register_pid "$p"
      [[ $n == lb1 ]] && DP1+=("$p")
    done < <(dataplane_start "$ns" "$n" "$rd")
  done
  K1=$(vrrp_start "$NS_LB1" lb1 101 "$VERSION" "$adv" "$VIP/24" eth0 "$VRID" "$rd")
  PIDS+=("$K1"); register_pid "$K1"
  wait_vip "$NS_LB1" "$VIP" present 15 || die "lb1 never got the VIP ($impl, see $rd)"
  K2=$(vrrp_start "$NS_LB2" lb2 100 "$VERSION" "$adv" "$VIP/24" eth0 "$VRID" "$rd")
  PIDS+=("$K2"); register_pid "$K2"
  settle=$(fcalc "4*$adv+1")
  sleep "$settle"
  if ! has_vip "$NS_LB1" "$VIP" || has_vip "$NS_LB2" "$VIP"; then
    die "VIP not on lb1 alone before the run ($impl, see $rd)"
  fi
  wait_tcp "$NS_CLIENT" "$VIP" 80 10 || die "VIP:80 not answering ($impl, see $rd)"
}

tear_down() {
  local i
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do stop_pid "${PIDS[i]}" || true; done
  netns_teardown
  _PIDS=()   # all stopped: never signal these (possibly reused) pids again at exit
}

# kill_and_measure IMPL ADVERT RUNDIR: probe, kill the master, wait for lb2 to answer
kill_and_measure() {
  local impl=$1 adv=$2 rd=$3 p dur deadline
  dur=$(fcalc "1+4*$adv+3+$POST_S+2")
  ip netns exec "$NS_CLIENT" taskset -c "$DATA_CORE" "$PYTHON" "$LIB/probe.py" "$VIP" 80 "$dur" "$PROBE_INTERVAL" "$PROBE_TIMEOUT" \
      >"$rd/probe.log" 2>&1 &
  p=$!; PIDS+=("$p"); register_pid "$p"
  # 1 s of probing, plus a random fraction of an advert interval: the kill lands at a
  # random phase of the master's advert cycle (the failover time depends on it: the
  # backup's master-down timer started at the last advert it heard).
  sleep "$(fcalc "1+$adv*$RANDOM/32768")"
  date +%s.%N >"$rd/t_kill"
  vrrp_kill "$K1" "$rd" lb1
  # the whole box dies: also its data plane when that is a separate process (Keepalived's
  # responder; halb is one process, already gone)
  for p in "${DP1[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  deadline=$(( $(date +%s) + ${adv%.*} * 4 + 5 ))
  until grep -q ' ok lb2$' "$rd/probe.log"; do
    (( $(date +%s) > deadline )) && { log "lb2 never answered ($impl adv $adv)"; break; }
    sleep 0.05
  done
  sleep "$POST_S"
}

one_failover() { # IMPL ADVERT REP
  local impl=$1 adv=$2 rep=$3 rd
  rd=$OUTDIR/failover/$impl-adv$adv-$rep; mkdir -p "$rd"
  log "failover $impl advert ${adv}s rep $rep"
  plugin "$impl"
  bring_up "$impl" "$adv" "$rd" "ip proto 112 or arp"
  kill_and_measure "$impl" "$adv" "$rd"
  tear_down
  "$PYTHON" "$LIB/analyze.py" failover "$rd" "$impl" "$adv" "$rep" "$VIP" | tee -a "$RESULTS"
}

one_saturate() { # IMPL REP
  local impl=$1 rep=$2 adv=$SAT_ADVERT rd b0 b1 s0 s1 url
  rd=$OUTDIR/saturate/$impl-adv$adv-$rep; mkdir -p "$rd"
  log "saturate $impl advert ${adv}s ${SAT_SECONDS}s rep $rep"
  plugin "$impl"
  bring_up "$impl" "$adv" "$rd" "ip proto 112"
  url=http://$VIP$SAT_PATH
  b0=$(total_busy); s0=$(date +%s.%N)
  date +%s.%N >"$rd/t_load0"
  if command -v wrk >/dev/null; then
    timeout $((SAT_SECONDS + 30)) ip netns exec "$NS_CLIENT" \
 taskset -c "$DATA_CORE" wrk -t"$SAT_THREADS" -c"$SAT_CONNS" -d"${SAT_SECONDS}s" --timeout 2s "$url" >"$rd/wrk.txt" 2>&1 || true
    awk '/Requests\/sec/{r=$2} /requests in/{n=$1} /Non-2xx/{x=$NF} END{printf "wrk %s req (%s req/s), non-2xx %s\n", n, r, (x==""?0:x)}' \
        "$rd/wrk.txt" >"$rd/load.txt"
  else
    log "wrk not installed (apt-get install wrk): using the slower lib/loadgen.py"
    timeout $((SAT_SECONDS + 30)) ip netns exec "$NS_CLIENT" \
        "$PYTHON" "$LIB/loadgen.py" "$VIP" 80 "$SAT_SECONDS" "$SAT_CONNS" >"$rd/load.txt" 2>&1 || true
  fi
  date +%s.%N >"$rd/t_load1"
  b1=$(total_busy); s1=$(date +%s.%N)
  awk -v b="$((b1-b0))" -v s0="$s0" -v s1="$s1" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
      'BEGIN{printf "%.1f\n", 100*b/hz/((s1-s0)*n)}' >"$rd/busy_pct"
  sleep 1
  if has_vip "$NS_LB1" "$VIP" && ! has_vip "$NS_LB2" "$VIP"; then echo lb1 >"$rd/placement_after_load"
  else { ip -n "$NS_LB1" -br a; ip -n "$NS_LB2" -br a; } >"$rd/placement_after_load"; fi
  kill_and_measure "$impl" "$adv" "$rd"
  tear_down
  "$PYTHON" "$LIB/analyze.py" saturate "$rd" "$impl" "$adv" "$rep" "$VIP" | tee -a "$RESULTS"
}

{
  echo "date=$(date -Is) kernel=$(uname -r) cpus=$(nproc) mode=$MODE quick=$QUICK"
  echo "impls=$IMPLS adverts=$ADVERTS repeats=$REPEATS version=$VERSION"
  echo "saturate: advert=$SAT_ADVERT seconds=$SAT_SECONDS repeats=$SAT_REPEATS conns=$SAT_CONNS threads=$SAT_THREADS path=$SAT_PATH wrk=$(command -v wrk || echo none)"
  echo "probe: interval=$PROBE_INTERVAL timeout=$PROBE_TIMEOUT"
  for impl in $IMPLS; do plugin "$impl"; echo "$impl: $(vrrp_version)"; done
} >"$OUTDIR/env.txt"
cat "$OUTDIR/env.txt" >&2

if [[ $MODE == failover || $MODE == all ]]; then
  for adv in $ADVERTS; do
    for ((rep=1; rep<=REPEATS; rep++)); do
      for impl in $IMPLS; do one_failover "$impl" "$adv" "$rep"; done   # interleaved
    done
  done
fi
if [[ $MODE == saturate || $MODE == all ]]; then
  for ((rep=1; rep<=SAT_REPEATS; rep++)); do
    for impl in $IMPLS; do one_saturate "$impl" "$rep"; done
  done
fi
"$PYTHON" "$LIB/analyze.py" --summary "$RESULTS" | tee "$OUTDIR/summary.md"
log "results in $OUTDIR"
