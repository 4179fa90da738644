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
#   BULK_MIB CALIBRATE PROXY_CORE LOAD_CORE PORT_L4 PORT_L7 BACKEND_PORT BUILD OUTDIR ...
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# PID registry + EXIT trap (kill by PID), watchdog, wait_quiet, CPU accounting from /proc
# shellcheck source=../l4/lib/common.sh
source "$REPO/bench-results/l4/lib/common.sh"
# shellcheck source=../l4/lib/backend-nginx.sh
source "$REPO/bench-results/l4/lib/backend-nginx.sh"
# shellcheck source=lib/proxies.sh
source "$HERE/lib/proxies.sh"
set -E
trap '[[ $BASHPID == "$$" ]] && log "error (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

QUICK=${QUICK:-0}
if ((QUICK)); then
  : "${REPEATS:=1}" "${DURATION:=3}" "${WARMUP:=1}" "${QUIET_SECS:=1}" "${QUIET_TIMEOUT:=5}"
  : "${QUIET_BUDGET:=20}" "${MAX_ATTEMPTS:=1}" "${MAX_RUNTIME:=420}"
fi
ALL_WORKLOADS="l4-bulk l4-short l7-ka-small l7-ka-1k l7-close"
WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}
VARIANTS=${VARIANTS:-"direct haproxy halb"}
REPEATS=${REPEATS:-3} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2}
CONNS=${CONNS:-50} BULK_CONNS=${BULK_CONNS:-4} BULK_MIB=${BULK_MIB:-64}
CALIBRATE=${CALIBRATE:-1}
PROXY_CORE=${PROXY_CORE:-1} LOAD_CORE=${LOAD_CORE:-0}
PORT_L4=${PORT_L4:-18280} PORT_L7=${PORT_L7:-18281} BACKEND_PORT=${BACKEND_PORT:-18282}
QUIET_MAX_PCT=${QUIET_MAX_PCT:-10} QUIET_SECS=${QUIET_SECS:-2}
QUIET_TIMEOUT=${QUIET_TIMEOUT:-20}   # per measured run
QUIET_BUDGET=${QUIET_BUDGET:-90}     # total seconds we may spend waiting; then QUIET_SECS per run
NOISE_MAX_PCT=${NOISE_MAX_PCT:-10}   # "disturbed": other processes used more than this % of the machine
MAX_ATTEMPTS=${MAX_ATTEMPTS:-2}      # a disturbed run is measured again (once by default)
MAX_RUNTIME=${MAX_RUNTIME:-1500}     # watchdog for the measuring part (build excluded)
BUILD=${BUILD:-auto}                 # auto: build if a binary is missing or older than sources; always; never
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}
HALB_BIN=${HALB_BIN:-$REPO/target/release/halb}
LOADTEST_BIN=${LOADTEST_BIN:-$REPO/target/release/halb-loadtest}
OUTDIR=${OUTDIR:-$HERE/results/$(date -u +%Y-%m-%d-%H%M%S)}

BE=127.0.0.1:$BACKEND_PORT
HZ=$CLK_TCK NCPU=$(grep -c "^cpu[0-9]" /proc/stat)
BULK_BYTES=$((BULK_MIB * 1024 * 1024))

# ---------------------------------------------------------------- preflight
require_tools haproxy nginx wrk curl taskset ss
[[ -x /usr/bin/python3 ]] || { echo "/usr/bin/python3 is needed (apt-get install -y python3)" >&2; exit 2; }
((NCPU >= 2)) || die "needs at least 2 cores (proxy core $PROXY_CORE, load core $LOAD_CORE)"
((PROXY_CORE != LOAD_CORE)) || die "PROXY_CORE and LOAD_CORE must differ"
for v in $VARIANTS; do case $v in direct|haproxy|halb) ;; *) die "unknown variant $v (direct, haproxy, halb)" ;; esac; done
for w in $WORKLOADS; do [[ " $ALL_WORKLOADS " == *" $w "* ]] || die "unknown workload $w ($ALL_WORKLOADS)"; done
for p in "$PORT_L4" "$PORT_L7" "$BACKEND_PORT"; do
  if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is already in use (set PORT_L4/PORT_L7/BACKEND_PORT)"; fi
done

mkdir -p "$OUTDIR"/{raw,runs,hist,plots}
OUTDIR=$(cd "$OUTDIR" && pwd)
log "results -> $OUTDIR"
exec 3>>"$OUTDIR/run.log"
summarize() { /usr/bin/python3 "$HERE/lib/summarize.py" "$OUTDIR" "$LOADTEST_BIN"; }
on_exit "[[ -s '$OUTDIR/summary.md' ]] || { echo '**INCOMPLETE RUN** (stopped early: see run.log)'; echo; /usr/bin/python3 '$HERE/lib/summarize.py' '$OUTDIR' '$LOADTEST_BIN'; } >'$OUTDIR/summary.md' 2>&1"
echo "# $(date -Is) $0 QUICK=$QUICK VARIANTS='$VARIANTS' WORKLOADS='$WORKLOADS' REPEATS=$REPEATS DURATION=$DURATION" >&3

# ---------------------------------------------------------------- build
stale() { [[ ! -x $1 ]] || [[ -n $(find "$REPO/src" "$REPO/loadtest/src" "$REPO/Cargo.toml" "$REPO/Cargo.lock" -newer "$1" -print -quit 2>/dev/null) ]]; }
case $BUILD in
  always) need_build=1 ;;
  never) need_build=0 ;;
  auto) need_build=0; { stale "$LOADTEST_BIN" || { [[ " $VARIANTS " == *" halb "* ]] && stale "$HALB_BIN"; }; } && need_build=1 ;;
  *) die "BUILD must be auto, always or never" ;;
esac
if ((need_build)); then
  log "building: (cd $REPO && cargo build --release -p halb -p halb-loadtest)"
  (cd "$REPO" && timeout "$BUILD_TIMEOUT" cargo build --release -p halb -p halb-loadtest) >"$OUTDIR/raw/cargo-build.log" 2>&1 ||
    die "cargo build --release failed (see $OUTDIR/raw/cargo-build.log)"
fi
[[ -x $LOADTEST_BIN ]] || die "no halb-loadtest at $LOADTEST_BIN"
[[ " $VARIANTS " != *" halb "* || -x $HALB_BIN ]] || die "no halb at $HALB_BIN"

# ---------------------------------------------------------------- setup
start_watchdog "$MAX_RUNTIME"
T_START=$SECONDS
# Everything this script starts runs on LOAD_CORE unless pinned elsewhere (the proxies).
taskset -pc "$LOAD_CORE" $$ >/dev/null
RUNDIR=$(mktemp -d /tmp/halb-bench-suite.XXXXXX)
on_exit "rm -rf '$RUNDIR'"
mkdir -p "$RUNDIR/www"
head -c 1024 /dev/zero | tr '\0' 'a' >"$RUNDIR/www/1k"
head -c "$BULK_BYTES" /dev/zero >"$RUNDIR/www/bulk"
chmod -R a+rX "$RUNDIR"

NGX=$(backend_start "$BE" "$RUNDIR/www" "$RUNDIR/nginx" "$LOAD_CORE"); register_pid "$NGX"
wait_port 127.0.0.1 "$BACKEND_PORT" 5 || die "nginx did not start"
sleep 0.3; NGX_WORKERS=$(children "$NGX")
[[ $(curl -sf --max-time 5 "http://$BE/ok") == ok ]] || die "nginx /ok probe failed"
[[ $(curl -sf --max-time 5 "http://$BE/1k" | wc -c) == 1024 ]] || die "nginx /1k probe failed"
[[ $(curl -sf --max-time 20 "http://$BE/bulk" | wc -c) == "$BULK_BYTES" ]] || die "nginx /bulk probe failed"

{
  echo "date_utc=$(date -u -Is)"
  echo "cpu_model=$(lscpu | awk -F': +' '/^Model name/{print $2; exit}') ncpu=$NCPU $(lscpu | awk -F': +' '/^Hypervisor vendor/{print "hypervisor=" $2}')"
  echo "memory=$(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel=$(uname -sr) $(uname -m)"
  echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "pinning: proxy -> core $PROXY_CORE (alone); nginx worker + halb-loadtest/wrk + this script -> core $LOAD_CORE"
  echo "haproxy: $(haproxy -v | sed -n 1p)"
  echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "wrk: $({ wrk -v 2>&1 || true; } | sed -n 1p)"
  echo "halb: $("$HALB_BIN" --version 2>&1 | head -1) sha256=$(sha256sum "$HALB_BIN" 2>/dev/null | cut -c1-16)"
  echo "halb-loadtest: $("$LOADTEST_BIN" --version 2>&1 | head -1)"
  echo "git_head=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none) dirty_files=$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l)"
  echo "sysctl: $(sysctl -n net.ipv4.tcp_tw_reuse net.ipv4.ip_local_port_range net.core.somaxconn 2>/dev/null | tr '\n\t' '  ')(tcp_tw_reuse ip_local_port_range somaxconn)"
  echo "ulimit_n=$(ulimit -n)"
  echo "knobs: QUICK=$QUICK VARIANTS='$VARIANTS' WORKLOADS='$WORKLOADS' REPEATS=$REPEATS DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS=$CONNS BULK_CONNS=$BULK_CONNS BULK_MIB=$BULK_MIB CALIBRATE=$CALIBRATE"
  echo "load_before=$(cat /proc/loadavg) rustc_running=$(rustc_count)"
} >"$OUTDIR/env.txt"
cp "$RUNDIR/nginx/nginx.conf" "$OUTDIR/raw/nginx.conf"
{
  echo "# $0 (QUICK=$QUICK), $(date -u -Is)"
  echo "taskset -c $LOAD_CORE nginx -p $RUNDIR/nginx -c $RUNDIR/nginx/nginx.conf   # raw/nginx.conf"
} >"$OUTDIR/commands.txt"
declare -A CMD_SEEN=()
note_cmd() { [[ -n ${CMD_SEEN[$1]:-} ]] && return 0; CMD_SEEN[$1]=1; echo "$1" >>"$OUTDIR/commands.txt"; }

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

QUIET_SPENT=0
quiet_gate() { # sets Q_OK Q_WAIT Q_PCT
  local to=$QUIET_TIMEOUT
  ((QUIET_SPENT >= QUIET_BUDGET)) && to=$QUIET_SECS
  Q_OK=1; wait_quiet "$QUIET_MAX_PCT" "$QUIET_SECS" "$to" || Q_OK=0
  Q_WAIT=$QUIET_WAITED Q_PCT=$QUIET_LAST_PCT
  QUIET_SPENT=$((QUIET_SPENT + QUIET_WAITED))
}
status_kib() { awk -v k="$2:" '$1==k {print $2}' /proc/"$1"/status 2>/dev/null || true; }

# measure_once NAME PXPID CMD... : quiet gate, snapshots around CMD, one runs/NAME.json
# (CMD's stdout is its JSON result; wrk runs are recognised by the caller's GENERATOR).
# Retries a disturbed run (other processes > NOISE_MAX_PCT of the machine) up to MAX_ATTEMPTS.
measure_once() {
  local name=$1 px=$2; shift 2
  local attempt=1 kept raw t0 t1 w0 w1 p0 p1 s0 s1 b0 b1 r0 r1 ct hwm_reset rss_peak other why
  while :; do
    raw=$OUTDIR/raw/$name-a$attempt.out
    quiet_gate
    hwm_reset=0 rss_peak=""
    if [[ -n $px ]]; then { echo 5 >"/proc/$px/clear_refs"; } 2>/dev/null && hwm_reset=1; fi
    # shellcheck disable=SC2086  # NGX_WORKERS is a list of PIDs
    { t0=$(total_busy); b0=$(proc_ticks "$NGX" $NGX_WORKERS); r0=$(rustc_count)
      p0=0 s0=0; [[ -n $px ]] && { p0=$(proc_ticks "$px"); s0=$(proc_sched_ns "$px"); }
      w0=$(date +%s.%N); }
    TIMEFORMAT='%U %S'
    { time timeout $((DURATION + 90)) "$@" >"$raw" 2>"$raw.err"; } 2>"$RUNDIR/time.txt" || true
    # shellcheck disable=SC2086
    { w1=$(date +%s.%N); t1=$(total_busy); b1=$(proc_ticks "$NGX" $NGX_WORKERS); r1=$(rustc_count)
      p1=0 s1=0; [[ -n $px ]] && { p1=$(proc_ticks "$px"); s1=$(proc_sched_ns "$px"); rss_peak=$(status_kib "$px" VmHWM); }; }
    ct=$(awk '{printf "%.3f", $1+$2}' "$RUNDIR/time.txt")
    other=$(awk -v t="$((t1-t0))" -v p="$((p1-p0))" -v b="$((b1-b0))" -v c="$ct" -v hz="$HZ" -v n="$NCPU" -v w0="$w0" -v w1="$w1" \
              'BEGIN{o=t/hz-p/hz-b/hz-c; if (o<0) o=0; printf "%.1f", 100*o/((w1-w0)*n)}')
    why=""
    ((Q_OK)) || why+="no quiet start; "
    ((r0 + r1 > 0)) && why+="rustc running; "
    awk -v o="$other" -v m="$NOISE_MAX_PCT" 'BEGIN{exit !(o > m)}' && why+="interference ${other}%; "
    kept=1
    [[ -n $why ]] && ((attempt < MAX_ATTEMPTS)) && kept=0
    /usr/bin/python3 "$HERE/lib/record.py" "$OUTDIR" name="$name" attempt="$attempt" kept="$kept" \
      noise="$why" raw="$raw" generator="$GENERATOR" workload="$WL" variant="$VAR" round="$ROUND" \
      hz="$HZ" wall_s="$(awk -v a="$w0" -v b="$w1" 'BEGIN{printf "%.4f", b-a}')" \
      proxy_ticks="$((p1-p0))" proxy_sched_ns="$((s1-s0))" backend_ticks="$((b1-b0))" client_cpu_s="$ct" \
      other_pct="$other" quiet_wait_s="$Q_WAIT" busy_before_pct="$Q_PCT" \
      hwm_reset="$hwm_reset" rss_peak_kib="$rss_peak" command="$(printf '%q ' "$@")" >&3 2>&1 ||
      log "record.py failed for $name (see run.log)"
    log "$name: $(tail -n 1 "$OUTDIR/run.log")"
    ((kept)) && break
    log "disturbed ($why) -> measuring $name again"
    attempt=$((attempt + 1))
  done
}

# run_workload WORKLOAD VARIANT ROUND PXPID
run_workload() {
  local wl=$1 v=$2 round=$3 px=$4 target args path
  target=$(target_of "$v" "$wl")
  read -r -a args <<<"$(load_args "$wl")"
  path=${args[-1]}; unset 'args[-1]'
  local -a base=(taskset -c "$LOAD_CORE" "$LOADTEST_BIN" "${args[@]}")
  # warm-up: not measured (connections, caches, the proxy's pools)
  timeout $((WARMUP + 60)) "${base[@]}" --duration "${WARMUP}s" --json "http://$target$path" >/dev/null 2>&1 ||
    log "warm-up of $wl on $v reported errors"
  local hist=$OUTDIR/hist/$wl-$v-r$round.hgrm
  local -a cmd=("${base[@]}" --duration "${DURATION}s" --json --hist-out "$hist" "http://$target$path")
  note_cmd "$(printf '%q ' "${cmd[@]}")  # $wl, $v"
  GENERATOR=halb-loadtest WL=$wl VAR=$v ROUND=$round measure_once "$wl-$v-r$round" "$px" "${cmd[@]}"
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

declare -A BROKEN=()
# run_variant VARIANT LAYER ROUND WORKLOADS...
run_variant() {
  local v=$1 layer=$2 round=$3; shift 3
  local rd=$RUNDIR/$v-$layer port px="" wl st=0
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
  if [[ -n $px ]]; then
    stop_pid "$px" 10 || log "$v ($layer) needed SIGKILL"
    wait "$px" 2>/dev/null || st=$?
    { echo "== round $round: exit status $st"; head -n 30 "$rd/proxy.err" 2>/dev/null; } >>"$OUTDIR/raw/proxy-$v-$layer.log" || true
  fi
}

# rotate N LIST... -> the list rotated left by N
rotate() { local n=$1; shift; local -a a=("$@"); local k=$((n % ${#a[@]})); echo "${a[@]:k}" "${a[@]:0:k}"; }

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
    read -r -a wls <<<"$(rotate $((round - 1)) "${wls[@]}")"
    for v in $(rotate $((round - 1)) "${VLIST[@]}"); do
      log "-- $v ($layer): ${wls[*]}"
      run_variant "$v" "$layer" "$round" "${wls[@]}"
    done
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

for k in "${!BROKEN[@]}"; do echo "$k: ${BROKEN[$k]}"; done | sort >"$OUTDIR/raw/broken.txt"
find "$OUTDIR/raw" -name '*.err' -empty -delete   # the generators' stderr, kept when not empty
echo "load_after=$(cat /proc/loadavg) rustc_running=$(rustc_count) quiet_wait_total_s=$QUIET_SPENT measuring_s=$((SECONDS - T_START))" >>"$OUTDIR/env.txt"
summarize >"$OUTDIR/summary.md.tmp" && mv "$OUTDIR/summary.md.tmp" "$OUTDIR/summary.md"
cat "$OUTDIR/summary.md"
log "done in $((SECONDS - T_START)) s: $OUTDIR/summary.md"
