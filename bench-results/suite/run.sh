#!/usr/bin/env bash
# The benchmark suite: direct / HAProxy / halb, driven by halb-loadtest, pinned, on
# 127.0.0.1 only. One command; installs nothing (it says what is missing and how to get it).
#
#   proxy (one at a time) ................ core PROXY_CORE (default 1), alone
#   nginx backend + halb-loadtest (+ wrk) . core LOAD_CORE (default 0)
#
# Workloads (halb-loadtest, one worker core, pinned to LOAD_CORE)
#   l4-bulk      mode tcp, BULK_CONNS keep-alive connections fetching a BULK_MIB MiB file
#                (nginx sendfile) over and over -> GiB/s, proxy CPU s per GiB
#   l4-short     mode tcp, CONNS connections, a new one per request (GET /ok, 3-byte body)
#                -> connections/s, proxy CPU µs per connection
#   l7-ka-small  mode http, CONNS keep-alive connections, GET /ok (3 bytes)
#   l7-ka-1k     mode http, CONNS keep-alive connections, GET /1k (1024 bytes)
#   l7-close     mode http, CONNS connections, a new one per request, GET /ok
# Variants: direct (halb-loadtest -> nginx: the ceiling), haproxy, halb (configs in
#   lib/proxies.sh: one thread on one core each, no per-request log).
# Generator check (CALIBRATE=1): wrk vs halb-loadtest straight to nginx, same core, same
#   connections, keep-alive and close: halb-loadtest must not be the bottleneck.
#
# Per run: halb-loadtest's JSON (req/s, bytes/s, latency percentiles, errors by kind) and
#   percentile file, proxy CPU = utime+stime of the proxy process from /proc/PID/stat over
#   the measured run (all threads; schedstat ns as a cross-check), proxy peak RSS (VmHWM,
#   reset before each run through clear_refs), and what else used the machine.
# REPEATS rounds; the order of variants and workloads rotates each round; medians.
#
# Output: results/<UTC date-time>/ summary.md (tables, ratios halb/HAProxy), summary.json,
#   runs/*.json (one per run), hist/*.hgrm, plots/*.svg (latency by percentile per
#   workload, ratios), env.txt (machine), commands.txt (every command), raw/, run.log.
#
# Usage:   bench-results/suite/run.sh              # ~15 min (3 rounds, 10 s runs)
#          QUICK=1 bench-results/suite/run.sh      # ~3 min smoke run (1 round, 3 s runs)
#          WORKLOADS="l7-ka-small" VARIANTS="haproxy halb" bench-results/suite/run.sh
# Knobs (defaults below): WORKLOADS VARIANTS REPEATS DURATION WARMUP CONNS BULK_CONNS
#   BULK_MIB CALIBRATE PROXY_CORE LOAD_CORE PORT_L4 PORT_L7 BACKEND_PORT; shared with ../tls
#   (defaults in lib/measure.sh, measure_knobs): QUIET_* NOISE_MAX_PCT MAX_ATTEMPTS MAX_RUNTIME
#   BUILD BUILD_TIMEOUT HALB_BIN LOADTEST_BIN OUTDIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# the measuring machinery, shared with ../tls/run.sh (it sources ../l4/lib/common.sh: PID
# registry + EXIT trap (kill by PID), watchdog, wait_quiet, CPU accounting from /proc)
# shellcheck source=lib/measure.sh
source "$HERE/lib/measure.sh"
# shellcheck source=lib/proxies.sh
source "$HERE/lib/proxies.sh"

measure_knobs 420   # QUICK=1: 1 round of 3 s runs, short quiet waits, watchdog 420 s
ALL_WORKLOADS="l4-bulk l4-short l7-ka-small l7-ka-1k l7-close"
WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}
VARIANTS=${VARIANTS:-"direct haproxy halb"}
REPEATS=${REPEATS:-3} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
CONNS=${CONNS:-50} BULK_CONNS=${BULK_CONNS:-4} BULK_MIB=${BULK_MIB:-64}
CALIBRATE=${CALIBRATE:-1}
PROXY_CORE=${PROXY_CORE:-1} LOAD_CORE=${LOAD_CORE:-0}
PORT_L4=${PORT_L4:-18280} PORT_L7=${PORT_L7:-18281} BACKEND_PORT=${BACKEND_PORT:-18282}

BE=127.0.0.1:$BACKEND_PORT
BULK_BYTES=$((BULK_MIB * 1024 * 1024))

# ---------------------------------------------------------------- preflight
require_tools haproxy nginx wrk curl taskset ss
measure_require_cores
for v in $VARIANTS; do case $v in direct|haproxy|halb) ;; *) die "unknown variant $v (direct, haproxy, halb)" ;; esac; done
measure_check_args PORT_L4 PORT_L7 BACKEND_PORT

measure_outdir

# ---------------------------------------------------------------- build
measure_build

# ---------------------------------------------------------------- setup
measure_setup suite
head -c 1024 /dev/zero | tr '\0' 'a' >"$RUNDIR/www/1k"
head -c "$BULK_BYTES" /dev/zero >"$RUNDIR/www/bulk"
chmod -R a+rX "$RUNDIR"

measure_backend
[[ $(curl -sf --max-time 5 "http://$BE/1k" | wc -c) == 1024 ]] || die "nginx /1k probe failed"
[[ $(curl -sf --max-time 20 "http://$BE/bulk" | wc -c) == "$BULK_BYTES" ]] || die "nginx /bulk probe failed"

env_tools() {
  echo "pinning: proxy -> core $PROXY_CORE (alone); nginx worker + halb-loadtest/wrk + this script -> core $LOAD_CORE"
  echo "haproxy: $(haproxy -v | sed -n 1p)"
  echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "wrk: $({ wrk -v 2>&1 || true; } | sed -n 1p)"
  echo "halb: $("$HALB_BIN" --version 2>&1 | head -1) sha256=$(sha256sum "$HALB_BIN" 2>/dev/null | cut -c1-16)"
  echo "halb-loadtest: $("$LOADTEST_BIN" --version 2>&1 | head -1)"
}
env_knobs() {
  echo "knobs: QUICK=$QUICK VARIANTS='$VARIANTS' WORKLOADS='$WORKLOADS' REPEATS=$REPEATS DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS=$CONNS BULK_CONNS=$BULK_CONNS BULK_MIB=$BULK_MIB CALIBRATE=$CALIBRATE"
}
measure_env_txt
cp "$RUNDIR/nginx/nginx.conf" "$OUTDIR/raw/nginx.conf"
{
  echo "# $0 (QUICK=$QUICK), $(date -u -Is)"
  echo "taskset -c $LOAD_CORE nginx -p $RUNDIR/nginx -c $RUNDIR/nginx/nginx.conf   # raw/nginx.conf"
} >"$OUTDIR/commands.txt"

# ---------------------------------------------------------------- workloads
layer_of() { echo "${1%%-*}"; }
# load_args WORKLOAD -> halb-loadtest options and path (after the common ones)
load_args() {
  case $1 in
    l4-bulk) echo "-c $BULK_CONNS --timeout 60s --expect-body-size $BULK_BYTES /bulk" ;;
    l4-short|l7-close) echo "-c $CONNS --close --expect-body-size 3 /ok" ;;
    l7-ka-small) echo "-c $CONNS --expect-body-size 3 /ok" ;;
    l7-ka-1k) echo "-c $CONNS --expect-body-size 1024 /1k" ;;
  esac
}
target_of() { # VARIANT WORKLOAD -> host:port
  [[ $1 == direct ]] && { echo "$BE"; return; }
  [[ $(layer_of "$2") == l4 ]] && echo "127.0.0.1:$PORT_L4" || echo "127.0.0.1:$PORT_L7"
}

# run_workload WORKLOAD VARIANT ROUND PXPID
run_workload() {
  local wl=$1 v=$2 round=$3 px=$4 target args path
  target=$(target_of "$v" "$wl")
  read -r -a args <<<"$(load_args "$wl")"
  path=${args[-1]}; unset 'args[-1]'
  measure_loadtest "$wl" "$v" "$round" "$px" "http://$target$path" taskset -c "$LOAD_CORE" "$LOADTEST_BIN" "${args[@]}"
}

# check_proxy LAYER TARGET -> 0 if the proxy answers correctly
check_proxy() {
  local layer=$1 t=$2
  [[ $(curl -s --max-time 5 "http://$t/ok") == ok ]] || return 1
  [[ $(curl -s --max-time 5 "http://$t/1k" | wc -c) == 1024 ]] || return 1
  [[ $(curl -s --max-time 5 -H "Connection: close" -o /dev/null -w '%{http_code}' "http://$t/ok") == 200 ]] || return 1
  [[ $layer == l4 ]] || return 0
  [[ $(curl -s --max-time 20 "http://$t/bulk" | wc -c) == "$BULK_BYTES" ]]
}

# run_variant VARIANT LAYER ROUND WORKLOADS...
run_variant() {
  local v=$1 layer=$2 round=$3; shift 3
  local rd=$RUNDIR/$v-$layer port px="" wl
  [[ $layer == l4 ]] && port=$PORT_L4 || port=$PORT_L7
  if [[ $v != direct ]]; then
    [[ -n ${BROKEN[$v-$layer]:-} ]] && return 0
    rm -rf "$rd"
    if ! suite_proxy_start "$v" "$layer" "127.0.0.1:$port" "$BE" "$rd" "$PROXY_CORE" 2>"$RUNDIR/start.err" || [[ -z $PROXY_PID ]]; then
      BROKEN[$v-$layer]="failed to start: $(head -c 300 "$RUNDIR/start.err" | tr '\n' ' ')"; log "${BROKEN[$v-$layer]}"; return 0
    fi
    px=$PROXY_PID; register_pid "$px"
    note_cmd "$PROXY_CMD   # raw/$v-$layer.$([[ $v == halb ]] && echo toml || echo cfg)"
    cp "$rd"/halb.toml "$OUTDIR/raw/$v-$layer.toml" 2>/dev/null || cp "$rd"/haproxy.cfg "$OUTDIR/raw/$v-$layer.cfg"
    if ! suite_proxy_ready "$v" "$rd" "$port" "$px" || ! check_proxy "$layer" "127.0.0.1:$port"; then
      BROKEN[$v-$layer]="not ready or wrong answers; stderr: $(tail -c 300 "$rd/proxy.err" 2>/dev/null | tr '\n' ' ')"
      log "$v ($layer): ${BROKEN[$v-$layer]}"; stop_pid "$px" 5 || true; return 0
    fi
  fi
  for wl in "$@"; do
    run_workload "$wl" "$v" "$round" "$px"
    if [[ -n $px ]] && ! is_running "$px"; then
      BROKEN[$v-$layer]="proxy died during $wl (round $round)"; log "${BROKEN[$v-$layer]}"; return 0
    fi
  done
  if [[ -n $px ]]; then measure_proxy_stop "$px" "$rd" "$v" "$layer" "$round"; fi
}

read -r -a VLIST <<<"$VARIANTS"
L4_WL=() L7_WL=()
for w in $WORKLOADS; do [[ $(layer_of "$w") == l4 ]] && L4_WL+=("$w") || L7_WL+=("$w"); done
NRUNS=$((REPEATS * ${#VLIST[@]} * (${#L4_WL[@]} + ${#L7_WL[@]})))
((CALIBRATE)) && NRUNS=$((NRUNS + REPEATS * 4))
log "plan: $REPEATS rounds x variants [$VARIANTS] x workloads [$WORKLOADS]$( ((CALIBRATE)) && echo " + generator check") = $NRUNS runs of ${DURATION}s (~$(( NRUNS * (DURATION + WARMUP + QUIET_SECS + 2) / 60 + 1 )) min)"

for ((round = 1; round <= REPEATS; round++)); do
  log "== round $round/$REPEATS"
  for layer in l4 l7; do
    if [[ $layer == l4 ]]; then wls=("${L4_WL[@]}"); else wls=("${L7_WL[@]}"); fi
    ((${#wls[@]})) || continue
    run_rotated "$round" "$layer" "${wls[@]}"
  done
  if ((CALIBRATE)); then
    # the generator check: wrk and halb-loadtest straight to nginx, keep-alive and close
    for mode in ka close; do
      hdr=() lt=(); [[ $mode == close ]] && { hdr=(-H "Connection: close"); lt=(--close); }
      for gen in $(rotate $((round - 1)) wrk halb-loadtest); do
        name=gen-$mode-$gen-r$round
        if [[ $gen == wrk ]]; then
          cmd=(taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNS" -d"${DURATION}s" "${hdr[@]}" "http://$BE/ok")
          timeout $((WARMUP + 30)) taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "${hdr[@]}" "http://$BE/ok" >/dev/null 2>&1 || true
        else
          cmd=(taskset -c "$LOAD_CORE" "$LOADTEST_BIN" -c "$CONNS" "${lt[@]}" --duration "${DURATION}s" --json "http://$BE/ok")
          timeout $((WARMUP + 30)) taskset -c "$LOAD_CORE" "$LOADTEST_BIN" -c "$CONNS" "${lt[@]}" --duration "${WARMUP}s" "http://$BE/ok" >/dev/null 2>&1 || true
        fi
        note_cmd "$(printf '%q ' "${cmd[@]}")  # generator check, $mode"
        GENERATOR=$gen WL=gen-$mode VAR=$gen ROUND=$round measure_once "$name" "" "${cmd[@]}"
      done
    done
  fi
done

measure_finish
