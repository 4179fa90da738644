#!/usr/bin/env bash
# L7 (mode http) benchmark: halb vs HAProxy 2.6, pinned identically, on 127.0.0.1 only.
#
#   proxy (one at a time) ........ core PROXY_CORE (1), alone
#   nginx backend + wrk .......... core LOAD_CORE (0)
#
# Cases (wrk -t1 -c50 -d10s --latency -s latency.lua, pinned to LOAD_CORE):
#   small-ka     GET /ok  (3-byte body "ok\n"), keep-alive
#   1k-ka        GET /1k  (1024-byte body),    keep-alive
#   small-close  GET /ok  with "Connection: close" (a new client connection per request)
#   1k-close     GET /1k  with "Connection: close"
# Variants: direct (wrk -> nginx, the reference), haproxy, halb (PROXIES); optional
#   haproxy-log / halb-log (one access-log line per request, see lib/proxies.sh).
# Per run: req/s, latency p50/p99/p99.9 (wrk histogram via latency.lua), proxy CPU µs per
#   request ((utime+stime) delta of the proxy process from /proc/PID/stat / requests),
#   proxy peak RSS during the run (VmHWM, reset before each run via clear_refs),
#   backend connections accepted per request (nginx stub_status: keep-alive check).
# REPEATS runs of each (variant, case), variant order rotated per repetition; medians.
#
# Output: results/<UTC date-time>/: summary.md, summary.json, results.csv, runs/*.json,
#         raw/ (wrk outputs, proxy configs, logs), env.txt, commands.txt, run.log
#
# Usage:  bench-results/l7/run.sh                 # ~10 min: 3 variants x 4 cases x 3 x 10 s
#         QUICK=1 bench-results/l7/run.sh         # ~1-2 min smoke run (1 repeat, 3 s runs)
#         PROXIES=haproxy bench-results/l7/run.sh # without halb (no build)
# Env knobs (defaults below): PROXIES DIRECT CASES REPEATS DURATION CONNS THREADS WARMUP
#   PROXY_CORE LOAD_CORE PROXY_PORT BACKEND_PORT BUILD HALB_BIN OUTDIR QUIET_* TIME_TARGET ...
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shared helpers of the L4 benchmark: PID registry + EXIT trap (kill by PID), watchdog,
# wait_quiet, CPU accounting from /proc
# shellcheck source=../l4/lib/common.sh
source "$REPO/bench-results/l4/lib/common.sh"
source "$HERE/lib/backend-nginx.sh"
source "$HERE/lib/proxies.sh"
set -E
trap '[[ $BASHPID == "$$" ]] && log "error (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

QUICK=${QUICK:-0}
if ((QUICK)); then
  : "${REPEATS:=1}" "${DURATION:=3}" "${WARMUP:=1}" "${QUIET_SECS:=1}" "${QUIET_TIMEOUT:=5}"
  : "${QUIET_BUDGET:=15}" "${MAX_ATTEMPTS:=1}" "${MAX_RUNTIME:=240}" "${IDLE_SAMPLE:=0}"
fi
PROXIES=${PROXIES:-"haproxy halb"}
DIRECT=${DIRECT:-1}
CASES=${CASES:-"small-ka 1k-ka small-close 1k-close"}
REPEATS=${REPEATS:-3} DURATION=${DURATION:-10} CONNS=${CONNS:-50} THREADS=${THREADS:-1} WARMUP=${WARMUP:-1}
PROXY_CORE=${PROXY_CORE:-1} LOAD_CORE=${LOAD_CORE:-0}
PROXY_PORT=${PROXY_PORT:-18180} BACKEND_PORT=${BACKEND_PORT:-18181}
QUIET_MAX_PCT=${QUIET_MAX_PCT:-10} QUIET_SECS=${QUIET_SECS:-2}
QUIET_TIMEOUT=${QUIET_TIMEOUT:-20}   # per measured run
QUIET_BUDGET=${QUIET_BUDGET:-60}     # total seconds we may spend waiting; then QUIET_SECS per run
NOISE_MAX_PCT=${NOISE_MAX_PCT:-10}   # "disturbed": other processes used more than this % of the machine
MAX_ATTEMPTS=${MAX_ATTEMPTS:-2}      # a disturbed run is measured again if the time target allows
TIME_TARGET=${TIME_TARGET:-600}      # no new attempt if it would push the planned end past this (s)
MAX_RUNTIME=${MAX_RUNTIME:-840}      # watchdog for the measuring part (build excluded)
IDLE_SAMPLE=${IDLE_SAMPLE:-1}        # proxy CPU over 1 s idle after each start (busy-poll detector)
BUILD=${BUILD:-auto}                 # auto: build if binary missing or older than sources; always; never
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}
HALB_BIN=${HALB_BIN:-$REPO/target/release/halb}
OUTDIR=${OUTDIR:-$HERE/results/$(date -u +%Y-%m-%d-%H%M%S)}
LUA=$HERE/latency.lua

BE=127.0.0.1:$BACKEND_PORT LB=127.0.0.1:$PROXY_PORT
HZ=$CLK_TCK NCPU=$(grep -c "^cpu[0-9]" /proc/stat)
VARIANTS=$PROXIES; ((DIRECT)) && VARIANTS="direct $PROXIES"

# ---------------------------------------------------------------- preflight
require_tools haproxy nginx wrk curl taskset ss
[[ -x /usr/bin/python3 ]] || die "/usr/bin/python3 is needed"
[[ -r $LUA ]] || die "missing $LUA"
((NCPU >= 2)) || die "needs at least 2 cores (proxy core $PROXY_CORE, load core $LOAD_CORE)"
((PROXY_CORE != LOAD_CORE)) || die "PROXY_CORE and LOAD_CORE must differ"
for v in $VARIANTS; do case $v in direct|haproxy|halb|haproxy-log|halb-log) ;; *) die "unknown variant $v" ;; esac; done
for c in $CASES; do case $c in small-ka|1k-ka|small-close|1k-close) ;; *) die "unknown case $c" ;; esac; done
for p in "$PROXY_PORT" "$BACKEND_PORT"; do
  if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is already in use (set PROXY_PORT/BACKEND_PORT)"; fi
done

mkdir -p "$OUTDIR/raw" "$OUTDIR/runs"
OUTDIR=$(cd "$OUTDIR" && pwd)
log "results -> $OUTDIR"
exec 3>>"$OUTDIR/run.log"
on_exit "[[ -s '$OUTDIR/summary.md' ]] || { echo '**INCOMPLETE RUN** (stopped early: see run.log)'; echo; /usr/bin/python3 '$HERE/lib/summarize.py' '$OUTDIR'; } >'$OUTDIR/summary.md' 2>&1"
echo "# $(date -Is) $0 QUICK=$QUICK VARIANTS='$VARIANTS' CASES='$CASES' REPEATS=$REPEATS DURATION=$DURATION" >&3

# ---------------------------------------------------------------- halb build + config check
HALB_STATUS="not requested"
declare -A BROKEN=()
if [[ " $VARIANTS " == *" halb"* ]]; then
  need_build=0
  case $BUILD in
    always) need_build=1 ;;
    never) ;;
    auto)
      if [[ ! -x $HALB_BIN ]]; then need_build=1
      elif [[ -n $(find "$REPO/src" "$REPO/Cargo.toml" "$REPO/Cargo.lock" -newer "$HALB_BIN" -print -quit 2>/dev/null) ]]; then need_build=1; fi ;;
    *) die "BUILD must be auto, always or never" ;;
  esac
  if ((need_build)); then
    log "building halb: (cd $REPO && cargo build --release)"
    if (cd "$REPO" && timeout "$BUILD_TIMEOUT" cargo build --release) >"$OUTDIR/raw/cargo-build.log" 2>&1; then
      log "build ok"
    else
      log "cargo build --release FAILED (see raw/cargo-build.log); using the existing binary if any"
    fi
  fi
  if [[ -x $HALB_BIN ]]; then
    HALB_STATUS="binary present"
    # does this binary accept the generated configuration?
    mkdir -p "$OUTDIR/raw/halb-check"
    for v in $VARIANTS; do
      [[ $v == halb* ]] || continue
      halb_config "$v" "$LB" "$BE" "$OUTDIR/raw/halb-check" >"$OUTDIR/raw/halb-check/$v.toml"
      if ! "$HALB_BIN" check -c "$OUTDIR/raw/halb-check/$v.toml" >"$OUTDIR/raw/halb-check/$v.out" 2>&1; then
        BROKEN[$v]="\`halb check\` rejects the generated configuration: $(head -c 400 "$OUTDIR/raw/halb-check/$v.out" | tr '\n' ' ')"
        log "$v skipped: ${BROKEN[$v]}"
      fi
    done
  else
    HALB_STATUS="no binary at $HALB_BIN"
    for v in $VARIANTS; do [[ $v == halb* ]] && BROKEN[$v]=$HALB_STATUS; done
  fi
fi

# ---------------------------------------------------------------- setup
start_watchdog "$MAX_RUNTIME"
T_START=$SECONDS
# Everything this script starts runs on LOAD_CORE unless explicitly pinned elsewhere
# (the proxy is started with `taskset -c PROXY_CORE`).
taskset -pc "$LOAD_CORE" $$ >/dev/null
RUNDIR=$(mktemp -d /tmp/halb-bench-l7.XXXXXX)
on_exit "rm -rf '$RUNDIR'"
mkdir -p "$RUNDIR/www"
head -c 1024 /dev/zero | tr '\0' 'a' >"$RUNDIR/www/1k"
chmod -R a+rX "$RUNDIR"

NGX=$(backend_start "$BE" "$RUNDIR/www" "$RUNDIR/nginx" "$LOAD_CORE"); register_pid "$NGX"
wait_port 127.0.0.1 "$BACKEND_PORT" 5 || die "nginx did not start"
sleep 0.3; NGX_WORKERS=$(children "$NGX")
[[ $(curl -sf --max-time 5 "http://$BE/ok") == ok ]] || die "nginx /ok probe failed"
[[ $(curl -sf --max-time 5 "http://$BE/1k" | wc -c) == 1024 ]] || die "nginx /1k probe failed"
[[ -n $(backend_status "$BE") ]] || die "nginx stub_status probe failed"

# ---------------------------------------------------------------- environment record
{
  echo "date_utc=$(date -u -Is)"
  echo "cpu_model=$(lscpu | awk -F': +' '/^Model name/{print $2; exit}') ncpu=$NCPU $(lscpu | awk -F': +' '/^Hypervisor vendor/{print "hypervisor=" $2}')"
  echo "kernel=$(uname -sr) $(uname -m)"
  echo "pinning: proxy -> core $PROXY_CORE (alone); nginx worker + wrk + this script -> core $LOAD_CORE"
  echo "nginx master=$NGX workers=$NGX_WORKERS affinity=$(for p in $NGX_WORKERS; do taskset -pc "$p" | sed 's/.*: //'; done)"
  echo "haproxy: $(haproxy -v | sed -n 1p)"
  echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "wrk: $({ wrk -v 2>&1 || true; } | sed -n 1p)"
  echo "halb: $HALB_STATUS"
  if [[ -x $HALB_BIN ]]; then
    echo "halb_bin=$HALB_BIN mtime=$(date -u -r "$HALB_BIN" -Is) sha256=$(sha256sum "$HALB_BIN" | cut -c1-16)"
    echo "halb_version=$("$HALB_BIN" --version 2>&1 | head -1)"
  fi
  echo "git_head=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none) ($(git -C "$REPO" log -1 --format=%s 2>/dev/null | cut -c1-80)) dirty_files=$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l)"
  echo "sysctl: $(sysctl -n net.ipv4.tcp_tw_reuse net.ipv4.ip_local_port_range net.core.somaxconn 2>/dev/null | tr '\n\t' '  ')(tcp_tw_reuse ip_local_port_range somaxconn)"
  echo "ulimit_n=$(ulimit -n)"
  echo "knobs: QUICK=$QUICK VARIANTS='$VARIANTS' CASES='$CASES' REPEATS=$REPEATS DURATION=${DURATION}s CONNS=$CONNS THREADS=$THREADS WARMUP=${WARMUP}s QUIET<${QUIET_MAX_PCT}%/${QUIET_SECS}s timeout=${QUIET_TIMEOUT}s budget=${QUIET_BUDGET}s"
  echo "load_before=$(cat /proc/loadavg) rustc_running=$(rustc_count)"
} >"$OUTDIR/env.txt"
cp "$RUNDIR/nginx/nginx.conf" "$OUTDIR/raw/nginx.conf"
cp "$LUA" "$OUTDIR/raw/latency.lua"
echo "taskset -c $LOAD_CORE nginx -p $RUNDIR/nginx -c $RUNDIR/nginx/nginx.conf   # raw/nginx.conf" >"$OUTDIR/commands.txt"

# ---------------------------------------------------------------- helpers
QUIET_SPENT=0
quiet_gate() { # sets Q_OK Q_WAIT Q_PCT
  local to=$QUIET_TIMEOUT
  ((QUIET_SPENT >= QUIET_BUDGET)) && to=$QUIET_SECS
  Q_OK=1; wait_quiet "$QUIET_MAX_PCT" "$QUIET_SECS" "$to" || Q_OK=0
  Q_WAIT=$QUIET_WAITED Q_PCT=$QUIET_LAST_PCT
  QUIET_SPENT=$((QUIET_SPENT + QUIET_WAITED))
}

declare -A CMD_SEEN=()
note_cmd() { [[ -n ${CMD_SEEN[$1]:-} ]] && return 0; CMD_SEEN[$1]=1; echo "$1" >>"$OUTDIR/commands.txt"; }

quote_cmd() { local a out=""; for a in "$@"; do [[ $a == *[[:space:]]* ]] && a="'$a'"; out+="$a "; done; echo "${out% }"; }
case_path() { case $1 in small-*) echo /ok ;; 1k-*) echo /1k ;; esac; }
case_body() { case $1 in small-*) echo 3 ;; 1k-*) echo 1024 ;; esac; }
case_close() { [[ $1 == *-close ]]; }

PXPID="" TARGET=""
# start_variant VARIANT -> sets PXPID, TARGET; returns 1 (and marks BROKEN) on failure
start_variant() {
  local v=$1 rd=$RUNDIR/$1 body
  PXPID=""
  if [[ $v == direct ]]; then TARGET=$BE; return 0; fi
  rm -rf "$rd"; mkdir -p "$rd"
  if ! proxy_start "$v" "$LB" "$BE" "$rd" "$PROXY_CORE" 2>"$rd/start.err" || [[ -z $PROXY_PID ]]; then
    BROKEN[$v]="failed to start: $(head -c 400 "$rd/start.err" | tr '\n' ' ')"; PXPID=""; return 1
  fi
  PXPID=$PROXY_PID
  register_pid "$PXPID"
  note_cmd "$PROXY_CMD   # raw/$v.$([[ $v == halb* ]] && echo toml || echo cfg)"
  if ! proxy_ready "$v" "$rd" "$PROXY_PORT" "$PXPID"; then
    BROKEN[$v]="not ready (exited=$(is_running "$PXPID" && echo no || echo yes)); stderr: $(tail -c 400 "$rd/proxy.err" 2>/dev/null | tr '\n' ' ')"
    return 1
  fi
  TARGET=$LB
  body=$(curl -s --max-time 5 "http://$TARGET/ok" 2>&1 || true)
  if [[ $body != ok ]]; then BROKEN[$v]="GET /ok through the proxy returned '${body:0:80}'"; return 1; fi
  body=$(curl -s --max-time 5 "http://$TARGET/1k" | md5sum | cut -d' ' -f1)
  if [[ $body != $(md5sum <"$RUNDIR/www/1k" | cut -d' ' -f1) ]]; then BROKEN[$v]="GET /1k through the proxy: wrong body"; return 1; fi
  body=$(curl -s --max-time 5 -H "Connection: close" -o /dev/null -w '%{http_code}' "http://$TARGET/ok" || true)
  if [[ $body != 200 ]]; then BROKEN[$v]="GET /ok with Connection: close through the proxy: status '$body'"; return 1; fi
  return 0
}

stop_variant() { # stop_variant VARIANT REP
  local v=$1 rep=$2 rd=$RUNDIR/$1 st=0 clean
  [[ -n $PXPID ]] || return 0
  { echo "== $v rep $rep (pid $PXPID): $(proxy_info "$v" "$rd")"; proxy_threads "$PXPID"; } >>"$OUTDIR/raw/info-$v.txt" 2>&1 || true
  if is_running "$PXPID"; then
    if stop_pid "$PXPID" 10; then clean=yes; else clean="no (SIGKILL after 10s)"; fi
    wait "$PXPID" 2>/dev/null || st=$?
    echo "rep $rep: SIGTERM -> status $st, clean=$clean" >>"$OUTDIR/raw/proxy-stop-$v.txt"
  else
    wait "$PXPID" 2>/dev/null || st=$?
    echo "rep $rep: proxy had already exited before stop (status $st)" >>"$OUTDIR/raw/proxy-stop-$v.txt"
  fi
  {
    echo "== rep $rep stderr:"; head -n 50 "$rd/proxy.err" 2>/dev/null || true
    echo "== rep $rep stdout (first/last lines):"; head -n 5 "$rd/proxy.out" 2>/dev/null || true; tail -n 5 "$rd/proxy.out" 2>/dev/null || true
    if [[ -f $rd/halb.log ]]; then
      echo "== rep $rep halb.log: $(wc -l <"$rd/halb.log") lines, non-access lines:"
      grep -v 'halb::access' "$rd/halb.log" | head -n 50 || true
      grep -m 3 'halb::access' "$rd/halb.log" | sed 's/^/sample: /' || true
    fi
  } >>"$OUTDIR/raw/proxylog-$v.txt" 2>&1
  cp "$rd/haproxy.cfg" "$OUTDIR/raw/$v.cfg" 2>/dev/null || true
  cp "$rd/halb.toml" "$OUTDIR/raw/$v.toml" 2>/dev/null || true
  PXPID=""
}

# shellcheck disable=SC2086  # $NGX_WORKERS is a list of PIDs
snap_begin() {
  S_C0=$(cpu_snapshot); S_T0=$(total_busy); S_B0=$(proc_ticks "$NGX" $NGX_WORKERS)
  S_P0=0 S_S0=0; if [[ -n $PXPID ]]; then S_P0=$(proc_ticks "$PXPID"); S_S0=$(proc_sched_ns "$PXPID"); fi
  S_R0=$(rustc_count); S_W0=$(date +%s.%N)
}
# shellcheck disable=SC2086
snap_end() {
  S_W1=$(date +%s.%N); S_C1=$(cpu_snapshot); S_T1=$(total_busy); S_B1=$(proc_ticks "$NGX" $NGX_WORKERS)
  S_P1=0 S_S1=0; if [[ -n $PXPID ]]; then S_P1=$(proc_ticks "$PXPID"); S_S1=$(proc_sched_ns "$PXPID"); fi
  S_R1=$(rustc_count)
}
client_time() { awk '{printf "%.3f", $1+$2}' "$1"; }
status_kib() { awk -v k="$2:" '$1==k {print $2}' /proc/"$1"/status 2>/dev/null || true; }

# is_noisy CLIENT_CPU_S -> 0 if the run just measured was disturbed
is_noisy() {
  local other
  other=$(awk -v t="$((S_T1-S_T0))" -v p="$((S_P1-S_P0))" -v b="$((S_B1-S_B0))" -v c="$1" -v hz="$HZ" \
            -v n="$NCPU" -v w0="$S_W0" -v w1="$S_W1" \
            'BEGIN{o=t/hz-p/hz-b/hz-c; if (o<0) o=0; printf "%.1f", 100*o/((w1-w0)*n)}')
  NOISE_WHY=""
  ((Q_OK)) || NOISE_WHY+="no quiet start; "
  ((S_R0 + S_R1 > 0)) && NOISE_WHY+="rustc running; "
  awk -v o="$other" -v m="$NOISE_MAX_PCT" 'BEGIN{exit !(o > m)}' && NOISE_WHY+="interference ${other}%; "
  [[ -n $NOISE_WHY ]]
}
RUN_EST=$((DURATION + QUIET_SECS + 2))
# may_retry ATTEMPT -> 0 if a disturbed run may be measured again within TIME_TARGET
may_retry() { (( $1 < MAX_ATTEMPTS && SECONDS - T_START + (RUNS_LEFT + 1) * RUN_EST <= TIME_TARGET )); }

# measure CASE VARIANT REP: warm-up, then measured attempts until one is undisturbed
measure() {
  local c=$1 v=$2 rep=$3 attempt=1 kept ct line raw url hwm_reset rss0 hwm rss1 ns0 ns1
  local -a hdr=()
  url="http://$TARGET$(case_path "$c")"
  case_close "$c" && hdr=(-H "Connection: close")
  timeout $((WARMUP+15)) taskset -c "$LOAD_CORE" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "${hdr[@]}" "$url" \
    >"$RUNDIR/warm.txt" 2>&1 || log "warm-up failed ($c $v): $(head -c 200 "$RUNDIR/warm.txt")"
  local -a cmd=(taskset -c "$LOAD_CORE" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$LUA" "${hdr[@]}" "$url")
  note_cmd "$(quote_cmd "${cmd[@]}")   # $c, $v"
  while :; do
    raw=$OUTDIR/raw/$c-$v-r$rep-a$attempt.txt
    if [[ $v == *-log ]]; then # access logs: keep only the current run's (disk space)
      for f in "$RUNDIR/$v/proxy.out" "$RUNDIR/$v/halb.log"; do [[ -f $f ]] && : >"$f"; done
    fi
    quiet_gate
    ns0=$(backend_status "$BE")
    hwm_reset=0 rss0="" hwm="" rss1=""
    if [[ -n $PXPID ]]; then
      # reset the peak RSS (VmHWM) to the current RSS, so VmHWM after the run is this run's peak
      { echo 5 >"/proc/$PXPID/clear_refs"; } 2>/dev/null && hwm_reset=1
      rss0=$(status_kib "$PXPID" VmRSS)
    fi
    snap_begin
    TIMEFORMAT='%U %S'
    { time timeout $((DURATION+30)) "${cmd[@]}" >"$raw" 2>&1 ; } 2>"$RUNDIR/time.txt" || true
    snap_end
    if [[ -n $PXPID ]]; then hwm=$(status_kib "$PXPID" VmHWM); rss1=$(status_kib "$PXPID" VmRSS); fi
    ns1=$(backend_status "$BE")
    ct=$(client_time "$RUNDIR/time.txt")
    kept=1
    if is_noisy "$ct" && may_retry "$attempt"; then kept=0; fi
    if ! grep -q 'requests in' "$raw"; then
      log "wrk produced no result for $c $v rep $rep: $(head -c 300 "$raw")"; echo "$c $v r$rep: wrk failed" >&3
    else
      line=$(/usr/bin/python3 "$HERE/lib/record.py" "$OUTDIR" \
        case="$c" variant="$v" rep="$rep" attempt="$attempt" kept="$kept" noise="${NOISE_WHY// /_}" \
        wrk_file="$raw" body_bytes="$(case_body "$c")" conns="$CONNS" duration="$DURATION" \
        hz="$HZ" ncpu="$NCPU" wall_s="$(awk -v a="$S_W0" -v b="$S_W1" 'BEGIN{printf "%.4f", b-a}')" \
        proxy_ticks="$((S_P1-S_P0))" proxy_sched_ns="$((S_S1-S_S0))" backend_ticks="$((S_B1-S_B0))" \
        client_cpu_s="$ct" total_busy_ticks="$((S_T1-S_T0))" \
        cpu0_pct="$(cpu_pct "$S_C0" "$S_C1" 0)" cpu1_pct="$(cpu_pct "$S_C0" "$S_C1" 1)" \
        quiet="$Q_OK" quiet_wait_s="$Q_WAIT" busy_before_pct="$Q_PCT" rustc_before="$S_R0" rustc_after="$S_R1" \
        hwm_reset="$hwm_reset" rss_before_kib="$rss0" rss_peak_kib="$hwm" rss_after_kib="$rss1" \
        "backend_before=${ns0// /,}" "backend_after=${ns1// /,}" \
        t_start="$(date -u -d "@$S_W0" +%H:%M:%S.%3N)" t_end="$(date -u -d "@$S_W1" +%H:%M:%S.%3N)")
      log "$line"; echo "$line" >&3
    fi
    ((kept)) && break
    log "disturbed ($NOISE_WHY) -> measuring $c $v rep $rep again"
    attempt=$((attempt+1))
  done
  return 0
}

idle_sample() { # proxy CPU while idle for 1 s (a busy-polling proxy shows > 0)
  ((IDLE_SAMPLE)) && [[ -n $PXPID ]] || return 0
  local a b
  a=$(proc_ticks "$PXPID"); sleep 1; b=$(proc_ticks "$PXPID")
  echo "$1 rep $2: idle_cpu_pct=$(awk -v d="$((b-a))" -v hz="$HZ" 'BEGIN{printf "%.1f", 100*d/hz}')" >>"$OUTDIR/raw/idle-cpu.txt"
}

# ---------------------------------------------------------------- measurements
read -r -a VLIST <<<"$VARIANTS"
read -r -a CLIST <<<"$CASES"
NV=${#VLIST[@]} NC=${#CLIST[@]}
RUNS_LEFT=$((REPEATS * NV * NC))
log "plan: $REPEATS x variants [$VARIANTS] x cases [$CASES], ${DURATION}s each (~$((RUNS_LEFT * (RUN_EST + WARMUP) / 60 + 1)) min)"
for ((rep=1; rep<=REPEATS; rep++)); do
  for ((i=0; i<NV; i++)); do
    v=${VLIST[$(( (i + rep - 1) % NV ))]}   # rotate the order each repetition
    if [[ -n ${BROKEN[$v]:-} ]]; then RUNS_LEFT=$((RUNS_LEFT - NC)); continue; fi
    log "== rep $rep/$REPEATS variant $v"
    if ! start_variant "$v"; then
      log "variant $v unusable: ${BROKEN[$v]}"
      [[ -n $PXPID ]] && { stop_variant "$v" "$rep" || true; }
      RUNS_LEFT=$((RUNS_LEFT - NC)); continue
    fi
    idle_sample "$v" "$rep"
    for ((k=0; k<NC; k++)); do
      c=${CLIST[$(( (k + rep - 1) % NC ))]}  # rotate the case order too
      RUNS_LEFT=$((RUNS_LEFT - 1))
      measure "$c" "$v" "$rep"
      if [[ -n $PXPID ]] && ! is_running "$PXPID"; then
        BROKEN[$v]="proxy died during $c (rep $rep)"; log "${BROKEN[$v]}"
        RUNS_LEFT=$((RUNS_LEFT - (NC - k - 1))); break
      fi
    done
    stop_variant "$v" "$rep"
  done
done

# ---------------------------------------------------------------- summary
for v in "${!BROKEN[@]}"; do echo "$v: ${BROKEN[$v]}"; done | sort -u >"$OUTDIR/raw/broken.txt"
echo "load_after=$(cat /proc/loadavg) rustc_running=$(rustc_count) quiet_wait_total_s=$QUIET_SPENT measuring_s=$((SECONDS - T_START))" >>"$OUTDIR/env.txt"
/usr/bin/python3 "$HERE/lib/summarize.py" "$OUTDIR" >"$OUTDIR/summary.md.tmp" && mv "$OUTDIR/summary.md.tmp" "$OUTDIR/summary.md"
cat "$OUTDIR/summary.md"
log "done in $((SECONDS - T_START)) s: $OUTDIR/summary.md"
