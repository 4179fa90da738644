#!/usr/bin/env bash
# L4 (mode tcp) benchmark: halb vs HAProxy 2.6, pinned identically, on 127.0.0.1 only.
#
#   proxy (one at a time) ........ core PROXY_CORE (1), alone
#   nginx backend + curl / wrk ... core LOAD_CORE (0)
#
# Scenarios
#   bulk   BULK_FETCHES x BULK_FILE_MIB MiB (default 4 x 512 MiB = 2 GiB) fetched by curl
#          from nginx (sendfile) through the proxy -> GiB/s, proxy CPU s per GiB
#   short  wrk -H "Connection: close" GET /ok (3-byte body): every request is a new TCP
#          connection -> connections/s, proxy CPU us per connection
# Variants
#   direct (no proxy, load-generator ceiling), haproxy-nosplice, haproxy-splice
#   (option splice-response), halb-splice (splice = true), halb-copy (splice = false)
# Then an strace -c / perf check that the splice variants really splice (SPLICE_CHECK=1).
#
# Proxy CPU = utime+stime of the proxy process (/proc/PID/stat: all threads) over the run.
# Every measured run first waits for the machine to be quiet (shared box); runs that
# could not get a quiet machine are flagged in results.csv and summary.md.
#
# Output: results/<UTC date-time>/ (results.csv, runs/*.json, raw/*, env.txt, summary.md ...)
# Env knobs (defaults): see the block below; e.g.
#   REPEATS=1 VARIANTS="haproxy-splice halb-splice" SCENARIOS=bulk ./run.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
source "$HERE/lib/common.sh"
source "$HERE/lib/backend-nginx.sh"
source "$HERE/lib/proxies.sh"
set -E
trap '[[ $BASHPID == "$$" ]] && log "error (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

VARIANTS=${VARIANTS:-"direct haproxy-nosplice haproxy-splice halb-splice halb-copy"}
SCENARIOS=${SCENARIOS:-"bulk short"}
REPEATS=${REPEATS:-3}
BULK_FILE_MIB=${BULK_FILE_MIB:-512} BULK_FETCHES=${BULK_FETCHES:-4}
SHORT_DURATION=${SHORT_DURATION:-10} SHORT_CONNS=${SHORT_CONNS:-50} SHORT_WARMUP=${SHORT_WARMUP:-2}
PROXY_CORE=${PROXY_CORE:-1} LOAD_CORE=${LOAD_CORE:-0}
PROXY_PORT=${PROXY_PORT:-18080} BACKEND_PORT=${BACKEND_PORT:-18081}
QUIET_MAX_PCT=${QUIET_MAX_PCT:-10} QUIET_SECS=${QUIET_SECS:-3}
QUIET_TIMEOUT=${QUIET_TIMEOUT:-60}   # per measured run
QUIET_BUDGET=${QUIET_BUDGET:-300}    # total seconds we may spend waiting; then 5 s per run
MAX_RUNTIME=${MAX_RUNTIME:-900}      # watchdog for the measuring part (build excluded)
MAX_ATTEMPTS=${MAX_ATTEMPTS:-3}      # a disturbed measured run is measured again, up to this many times
NOISE_MAX_PCT=${NOISE_MAX_PCT:-10}   # "disturbed": other processes used more than this % of the machine
RETRY_UNTIL=${RETRY_UNTIL:-540}      # ... but no new attempt after this many seconds of measuring
SPLICE_CHECK=${SPLICE_CHECK:-1}
BUILD=${BUILD:-auto}                 # auto: build if binary missing or older than sources; always; never
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}
HALB_BIN=${HALB_BIN:-$REPO/target/release/halb}
OUTDIR=${OUTDIR:-$HERE/results/$(date -u +%Y-%m-%d-%H%M)}

BE=127.0.0.1:$BACKEND_PORT LB=127.0.0.1:$PROXY_PORT
HZ=$CLK_TCK NCPU=$(grep -c "^cpu[0-9]" /proc/stat)

# ---------------------------------------------------------------- preflight
require_tools haproxy nginx wrk curl strace taskset
HAVE_PERF=0; command -v perf >/dev/null && HAVE_PERF=1
[[ -x /usr/bin/python3 ]] || die "/usr/bin/python3 is needed"
((NCPU >= 2)) || die "needs at least 2 cores (proxy core $PROXY_CORE, load core $LOAD_CORE)"
for p in "$PROXY_PORT" "$BACKEND_PORT"; do
  if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is already in use (set PROXY_PORT/BACKEND_PORT)"; fi
done

mkdir -p "$OUTDIR/raw" "$OUTDIR/runs"
OUTDIR=$(cd "$OUTDIR" && pwd)
log "results -> $OUTDIR"
exec 3>>"$OUTDIR/run.log"
# whatever happens (watchdog, error), leave a summary of what was measured
on_exit "[[ -s '$OUTDIR/summary.md' ]] || { echo '**INCOMPLETE RUN** (stopped early: see run.log)'; echo; /usr/bin/python3 '$HERE/lib/summarize.py' '$OUTDIR'; } >'$OUTDIR/summary.md' 2>&1"
echo "# $(date -Is) $0 VARIANTS='$VARIANTS' SCENARIOS='$SCENARIOS' REPEATS=$REPEATS" >&3

# ---------------------------------------------------------------- halb build
HALB_STATUS="not requested"
want_halb=0; [[ " $VARIANTS " == *" halb-"* ]] && want_halb=1
if ((want_halb)); then
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
    log "building halb: (cd $REPO && cargo build --release)  [rustc running now: $(rustc_count)]"
    if (cd "$REPO" && timeout "$BUILD_TIMEOUT" cargo build --release) >"$OUTDIR/raw/cargo-build.log" 2>&1; then
      log "build ok"
    else
      log "cargo build --release FAILED (see raw/cargo-build.log); halb variants will be skipped"
    fi
  fi
  if [[ -x $HALB_BIN ]]; then HALB_STATUS="binary present"; else HALB_STATUS="no binary at $HALB_BIN"; fi
fi

# ---------------------------------------------------------------- setup
start_watchdog "$MAX_RUNTIME"
T_START=$SECONDS
# Everything this script starts runs on LOAD_CORE unless explicitly pinned elsewhere
# (the proxy is started with `taskset -c PROXY_CORE`).
taskset -pc "$LOAD_CORE" $$ >/dev/null
RUNDIR=$(mktemp -d /tmp/halb-bench-l4.XXXXXX)
on_exit "rm -rf '$RUNDIR'"
mkdir -p "$RUNDIR/www"
log "creating ${BULK_FILE_MIB} MiB test object"
head -c $((BULK_FILE_MIB*1024*1024)) /dev/urandom >"$RUNDIR/www/big"
chmod -R a+rX "$RUNDIR"
BIG_SIZE=$(stat -c %s "$RUNDIR/www/big")
BIG_MD5=$(md5sum <"$RUNDIR/www/big" | cut -d' ' -f1)

NGX=$(backend_start "$BE" "$RUNDIR/www" "$RUNDIR/nginx" "$LOAD_CORE"); register_pid "$NGX"
wait_port 127.0.0.1 "$BACKEND_PORT" 5 || die "nginx did not start"
sleep 0.3; NGX_WORKERS=$(children "$NGX")
[[ $(curl -sf --max-time 5 "http://$BE/ok") == ok ]] || die "nginx /ok probe failed"

# ---------------------------------------------------------------- environment record
{
  echo "date_utc=$(date -u -Is)"
  echo "host_kernel=$(uname -r) $(uname -m)"
  echo "cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo) nproc=$NCPU"
  echo "pinning: proxy -> core $PROXY_CORE (alone); nginx worker + curl/wrk + this script -> core $LOAD_CORE"
  echo "nginx master=$NGX workers=$NGX_WORKERS affinity=$(for p in $NGX_WORKERS; do taskset -pc "$p" | sed 's/.*: //'; done)"
  echo "haproxy: $(haproxy -v | sed -n 1p)"
  echo "nginx: $(nginx -v 2>&1)"
  echo "wrk: $({ wrk -v 2>&1 || true; } | sed -n 1p)"
  echo "curl: $(curl --version | sed -n 1p)"
  echo "strace: $(strace -V | sed -n 1p)"
  ((HAVE_PERF)) && echo "perf: $(perf --version)"
  echo "halb: $HALB_STATUS"
  if [[ -x $HALB_BIN ]]; then
    echo "halb_bin=$HALB_BIN mtime=$(date -u -r "$HALB_BIN" -Is) sha256=$(sha256sum "$HALB_BIN" | cut -c1-16)"
    echo "halb_version=$("$HALB_BIN" --version 2>&1 | head -1)"
  fi
  echo "git_head=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none) dirty_files=$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l)"
  echo "sysctl: $(sysctl -n net.ipv4.tcp_tw_reuse net.ipv4.ip_local_port_range net.core.somaxconn fs.pipe-max-size 2>/dev/null | tr '\n\t' '  ')(tcp_tw_reuse ip_local_port_range somaxconn pipe-max-size)"
  echo "ulimit_n=$(ulimit -n)"
  echo "knobs: VARIANTS='$VARIANTS' SCENARIOS='$SCENARIOS' REPEATS=$REPEATS BULK=${BULK_FETCHES}x${BULK_FILE_MIB}MiB SHORT=${SHORT_DURATION}s/${SHORT_CONNS}conns QUIET<${QUIET_MAX_PCT}%/${QUIET_SECS}s timeout=${QUIET_TIMEOUT}s budget=${QUIET_BUDGET}s"
  echo "load_before=$(cat /proc/loadavg) rustc_running=$(rustc_count)"
} >"$OUTDIR/env.txt"
cp "$RUNDIR/nginx/nginx.conf" "$OUTDIR/raw/nginx.conf"

# ---------------------------------------------------------------- helpers
QUIET_SPENT=0
quiet_gate() { # sets Q_OK Q_WAIT Q_PCT
  local to=$QUIET_TIMEOUT
  ((QUIET_SPENT >= QUIET_BUDGET)) && to=5
  Q_OK=1; wait_quiet "$QUIET_MAX_PCT" "$QUIET_SECS" "$to" || Q_OK=0
  Q_WAIT=$QUIET_WAITED Q_PCT=$QUIET_LAST_PCT
  QUIET_SPENT=$((QUIET_SPENT + QUIET_WAITED))
}

declare -A BROKEN=()
declare -A CHECKED=()
PXPID="" TARGET=""

# start_variant VARIANT -> sets PXPID, TARGET; returns 1 (and marks BROKEN) on failure
start_variant() {
  local v=$1 rd=$RUNDIR/$1
  PXPID=""
  if [[ $v == direct ]]; then TARGET=$BE; return 0; fi
  rm -rf "$rd"; mkdir -p "$rd"
  if ! proxy_start "$v" "$LB" "$BE" "$rd" "$PROXY_CORE" 2>"$rd/start.err" || [[ -z $PROXY_PID ]]; then
    BROKEN[$v]="failed to start: $(head -c 300 "$rd/start.err" | tr '\n' ' ')"; PXPID=""; return 1
  fi
  PXPID=$PROXY_PID
  register_pid "$PXPID"
  if ! proxy_ready "$v" "$rd" "$PROXY_PORT" "$PXPID"; then
    BROKEN[$v]="not ready (exited=$(is_running "$PXPID" && echo no || echo yes)); log: $(tail -c 400 "$rd/proxy.log" 2>/dev/null | tr '\n' ' ')"
    return 1
  fi
  TARGET=$LB
  local body
  body=$(curl -s --max-time 5 "http://$TARGET/ok" 2>&1 || true)
  if [[ $body != ok ]]; then BROKEN[$v]="GET /ok through proxy returned '${body:0:80}'"; return 1; fi
  if [[ -z ${CHECKED[$v]:-} ]]; then # first start of this variant: byte-exact check of the big object
    local sum
    sum=$(curl -s --max-time 60 "http://$TARGET/big" | md5sum | cut -d' ' -f1)
    if [[ $sum != "$BIG_MD5" ]]; then BROKEN[$v]="big object corrupted/short through proxy (md5 $sum != $BIG_MD5)"; return 1; fi
    CHECKED[$v]=1
  fi
  return 0
}

stop_variant() { # stop_variant VARIANT REP
  local v=$1 rep=$2 rd=$RUNDIR/$1 t0 t1 clean
  [[ -n $PXPID ]] || return 0
  proxy_digest_log "$v" "$rd" "$OUTDIR/raw/proxylog-$v.txt" "rep $rep: after runs"
  local st=0
  if is_running "$PXPID"; then
    t0=$(date +%s.%N)
    if stop_pid "$PXPID" 10; then clean=yes; else clean="no (SIGKILL after 10s)"; fi
    t1=$(date +%s.%N)
    wait "$PXPID" 2>/dev/null || st=$?
    echo "rep $rep: SIGTERM -> exited in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s, status $st, clean=$clean" >>"$OUTDIR/raw/proxy-stop-$v.txt"
  else
    wait "$PXPID" 2>/dev/null || st=$?
    echo "rep $rep: proxy had already exited before stop (status $st)" >>"$OUTDIR/raw/proxy-stop-$v.txt"
  fi
  [[ -f $rd/proxy.log ]] && [[ -s $rd/proxy.log ]] && proxy_digest_log "$v" "$rd" "$OUTDIR/raw/proxylog-$v.txt" "rep $rep: shutdown"
  cp "$rd"/haproxy.cfg "$rd"/halb.toml "$OUTDIR/raw/" 2>/dev/null || true
  [[ $v == halb-copy && -f $OUTDIR/raw/halb.toml ]] && mv "$OUTDIR/raw/halb.toml" "$OUTDIR/raw/halb-copy.toml"
  [[ $v == halb-splice && -f $OUTDIR/raw/halb.toml ]] && mv "$OUTDIR/raw/halb.toml" "$OUTDIR/raw/halb-splice.toml"
  [[ $v == haproxy-* && -f $OUTDIR/raw/haproxy.cfg ]] && mv "$OUTDIR/raw/haproxy.cfg" "$OUTDIR/raw/$v.cfg"
  PXPID=""
}

# snap / common raw counters around a measured run
# shellcheck disable=SC2086  # $NGX_WORKERS is a list of PIDs
snap_begin() {
  S_C0=$(cpu_snapshot); S_T0=$(total_busy); S_B0=$(proc_ticks "$NGX" $NGX_WORKERS)
  S_P0=0 S_S0=0; if [[ -n $PXPID ]]; then S_P0=$(proc_ticks "$PXPID"); S_S0=$(proc_sched_ns "$PXPID"); fi
  S_R0=$(rustc_count); tcp_counters >"$RUNDIR/tcp0.txt"; S_W0=$(date +%s.%N)
}
# shellcheck disable=SC2086
snap_end() {
  S_W1=$(date +%s.%N); tcp_counters >"$RUNDIR/tcp1.txt"; S_C1=$(cpu_snapshot); S_T1=$(total_busy); S_B1=$(proc_ticks "$NGX" $NGX_WORKERS)
  S_P1=0 S_S1=0; if [[ -n $PXPID ]]; then S_P1=$(proc_ticks "$PXPID"); S_S1=$(proc_sched_ns "$PXPID"); fi
  S_R1=$(rustc_count)
}
common_raw() { # variant rep client_cpu_s proxy_conns
  echo "variant=$1" "rep=$2" "hz=$HZ" "ncpu=$NCPU" \
    "wall_s=$(awk -v a="$S_W0" -v b="$S_W1" 'BEGIN{printf "%.4f", b-a}')" \
    "proxy_ticks=$((S_P1-S_P0))" "proxy_sched_ns=$((S_S1-S_S0))" "backend_ticks=$((S_B1-S_B0))" \
    "client_cpu_s=$3" "total_busy_ticks=$((S_T1-S_T0))" \
    "cpu0_pct=$(cpu_pct "$S_C0" "$S_C1" 0)" "cpu1_pct=$(cpu_pct "$S_C0" "$S_C1" 1)" \
    "quiet=$Q_OK" "quiet_wait_s=$Q_WAIT" "busy_before_pct=$Q_PCT" \
    "rustc_before=$S_R0" "rustc_after=$S_R1" "proxy_conns=$4" \
    "t_start=$(date -u -d "@$S_W0" +%H:%M:%S.%3N)" "t_end=$(date -u -d "@$S_W1" +%H:%M:%S.%3N)"
}
client_time() { awk '{printf "%.3f", $1+$2}' "$1"; }

# is_noisy -> 0 if the run just measured was disturbed: no quiet start, rustc seen at its
# start or end, or other processes used more than NOISE_MAX_PCT of the machine during it.
is_noisy() { # is_noisy CLIENT_CPU_S
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
# may_retry ATTEMPT -> 0 if a disturbed run may be measured again (attempts and time left)
may_retry() { (( $1 < MAX_ATTEMPTS && SECONDS - T_START < RETRY_UNTIL )); }

# measure SCENARIO VARIANT REP : warm-up, then up to MAX_ATTEMPTS measured attempts until
# one is undisturbed (every attempt is recorded; the kept one has kept=1).
measure() {
  local sc=$1 v=$2 rep=$3 attempt=1 kept ct line raw
  if [[ $sc == bulk ]]; then
    timeout 60 curl -sf --max-time 55 -o /dev/null "http://$TARGET/big" || log "bulk warm-up fetch failed ($v)"
  else
    timeout $((SHORT_WARMUP+15)) wrk -t1 -c"$SHORT_CONNS" -d"${SHORT_WARMUP}s" -H "Connection: close" \
      "http://$TARGET/ok" >"$RUNDIR/warm.txt" 2>&1 || true
  fi
  [[ -n $PXPID ]] && proxy_digest_log "$v" "$RUNDIR/$v" "$OUTDIR/raw/proxylog-$v.txt" "rep $rep: $sc warm-up"
  while :; do
    raw=$OUTDIR/raw/$sc-$v-r$rep-a$attempt.txt
    quiet_gate
    local c0=0 c1=0
    [[ -n $PXPID ]] && c0=$(proxy_conns "$v" "$RUNDIR/$v")
    snap_begin
    TIMEFORMAT='%U %S'
    if [[ $sc == bulk ]]; then
      { time for ((f=1; f<=BULK_FETCHES; f++)); do
          timeout 120 curl -s --max-time 110 -o /dev/null -w '%{time_total} %{size_download} %{http_code}\n' \
            "http://$TARGET/big" || echo "0 0 curl-failed"
        done >"$raw"; } 2>"$RUNDIR/time.txt"
    else
      { time timeout $((SHORT_DURATION+30)) wrk -t1 -c"$SHORT_CONNS" -d"${SHORT_DURATION}s" --latency \
          -H "Connection: close" "http://$TARGET/ok" >"$raw" 2>&1 ; } 2>"$RUNDIR/time.txt" || true
    fi
    snap_end
    [[ -n $PXPID ]] && c1=$(proxy_conns "$v" "$RUNDIR/$v")
    [[ -n $PXPID ]] && [[ $(proxy_kind "$v") == halb ]] && c0=0   # halb: log was truncated before the run
    ct=$(client_time "$RUNDIR/time.txt")
    kept=1
    if is_noisy "$ct" && may_retry "$attempt"; then kept=0; fi
    if [[ $sc == short ]] && ! grep -q 'requests in' "$raw"; then
      log "wrk produced no result for $v rep $rep: $(head -c 300 "$raw")"; echo "short $v r$rep: wrk failed" >&3
    else
      if [[ $sc == bulk ]]; then set -- "fetch_file=$raw" "expect_bytes=$BIG_SIZE" "fetches=$BULK_FETCHES"
      else set -- "wrk_file=$raw"; fi
      # shellcheck disable=SC2046  # common_raw prints key=value words without spaces
      line=$(/usr/bin/python3 "$HERE/lib/record.py" "$OUTDIR" "$sc" $(common_raw "$v" "$rep" "$ct" "$((c1-c0))") \
        "attempt=$attempt" "kept=$kept" "noise=${NOISE_WHY// /_}" \
        "tcp_before=$RUNDIR/tcp0.txt" "tcp_after=$RUNDIR/tcp1.txt" "$@")
      log "$line"; echo "$line" >&3
    fi
    [[ -n $PXPID ]] && proxy_digest_log "$v" "$RUNDIR/$v" "$OUTDIR/raw/proxylog-$v.txt" "rep $rep: $sc measured (attempt $attempt)"
    ((kept)) && break
    log "disturbed ($NOISE_WHY) -> measuring $sc $v rep $rep again"
    attempt=$((attempt+1))
    set -- "$sc" "$v" "$rep"
  done
  return 0
}

idle_sample() { # idle_sample VARIANT REP : proxy CPU while idle for 2 s (busy-polling detector)
  [[ -n $PXPID ]] || return 0
  local a b
  a=$(proc_ticks "$PXPID"); sleep 2; b=$(proc_ticks "$PXPID")
  echo "$1 rep $2: idle_cpu_pct=$(awk -v d="$((b-a))" -v hz="$HZ" 'BEGIN{printf "%.1f", 100*d/hz/2}')" >>"$OUTDIR/raw/idle-cpu.txt"
}

# ---------------------------------------------------------------- measurements
read -r -a VLIST <<<"$VARIANTS"
NV=${#VLIST[@]}
for ((rep=1; rep<=REPEATS; rep++)); do
  for ((i=0; i<NV; i++)); do
    v=${VLIST[$(( (i + rep - 1) % NV ))]}   # rotate the order each repetition
    [[ -n ${BROKEN[$v]:-} ]] && continue
    if [[ $v == halb-* && ! -x $HALB_BIN ]]; then BROKEN[$v]="$HALB_STATUS"; continue; fi
    log "== rep $rep/$REPEATS variant $v"
    if ! start_variant "$v"; then
      log "variant $v unusable: ${BROKEN[$v]}"
      echo "$v: ${BROKEN[$v]}" >>"$OUTDIR/raw/broken.txt"
      [[ -n $PXPID ]] && { stop_variant "$v" "$rep" || true; }
      continue
    fi
    idle_sample "$v" "$rep"
    for sc in $SCENARIOS; do
      case $sc in
        bulk|short) measure "$sc" "$v" "$rep" ;;
        *) die "unknown scenario $sc" ;;
      esac
      if [[ -n $PXPID ]] && ! is_running "$PXPID"; then
        BROKEN[$v]="proxy died during $sc (rep $rep)"; echo "$v: ${BROKEN[$v]}" >>"$OUTDIR/raw/broken.txt"
        log "${BROKEN[$v]}"; break
      fi
    done
    if [[ -n $PXPID ]]; then
      { echo "== $v rep $rep (pid $PXPID)"; proxy_threads "$PXPID"; echo "info: $(proxy_info "$v" "$RUNDIR/$v")"; } >>"$OUTDIR/raw/threads-$v.txt" 2>&1 || true
    fi
    stop_variant "$v" "$rep"
  done
done

# ---------------------------------------------------------------- splice check
if ((SPLICE_CHECK)); then
  log "== splice check (strace -c; under strace, throughput is NOT a benchmark)"
  SC=$OUTDIR/splice-check.txt
  {
    echo "# strace -c -f -p PROXY during $((BULK_FILE_MIB)) MiB x 1 fetch through the proxy ($(date -u -Is))"
    echo "# columns: syscall=calls (from strace -c); then perf tracepoint counts over a 2nd fetch"
    echo "# (syscalls:sys_enter_* and io_uring:io_uring_submit_req by opcode: io_uring ops are not syscalls)"
  } >"$SC"
  for v in $VARIANTS; do
    [[ $v == direct ]] && continue
    [[ -n ${BROKEN[$v]:-} ]] && { echo "$v: skipped (${BROKEN[$v]})" >>"$SC"; continue; }
    start_variant "$v" || { echo "$v: skipped (${BROKEN[$v]})" >>"$SC"; stop_variant "$v" check || true; continue; }
    url="http://$TARGET/big"
    curl -sf --max-time 60 -o /dev/null "$url" || true
    timeout 120 strace -c -f -p "$PXPID" -o "$OUTDIR/raw/strace-$v.txt" 2>/dev/null & ST=$!; register_pid "$ST"
    sleep 1
    sz=$(curl -s --max-time 100 -o /dev/null -w '%{size_download}' "$url" || echo 0)
    kill -INT "$ST" 2>/dev/null || true; wait "$ST" 2>/dev/null || true
    counts=$(awk '$NF ~ /^(splice|recvfrom|sendto|read|write|readv|writev|recvmsg|sendmsg|io_uring_enter|epoll_wait|epoll_pwait)$/ && $4 ~ /^[0-9]+$/ {printf "%s=%s ", $NF, $4}' "$OUTDIR/raw/strace-$v.txt")
    line="$(printf '%-17s strace: %s(bytes=%s)' "$v" "${counts:-<none of the listed syscalls>}" "$sz")"
    if ((HAVE_PERF)); then
      evs=syscalls:sys_enter_splice,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_io_uring_enter,io_uring:io_uring_submit_req
      timeout 120 perf record -q -e "$evs" -p "$PXPID" -o "$RUNDIR/perf-$v.data" >/dev/null 2>"$RUNDIR/perf-$v.err" & PF=$!; register_pid "$PF"
      sleep 1
      curl -s --max-time 100 -o /dev/null "$url" || true
      kill -INT "$PF" 2>/dev/null || true; wait "$PF" 2>/dev/null || true
      if [[ -s $RUNDIR/perf-$v.data ]]; then
        perf script -i "$RUNDIR/perf-$v.data" -F event,trace 2>/dev/null >"$RUNDIR/perf-$v.txt" || true
        pc=$(awk '{ ev=$1; sub(/:$/,"",ev); sub(/^syscalls:sys_enter_/,"",ev)
                    if (ev ~ /io_uring_submit_req/) { op="?"; for (i=1;i<=NF;i++) if ($i=="opcode") { op=$(i+1); sub(/,$/,"",op) }; c["uring_op_" op]++ }
                    else c[ev]++ }
                  END { for (k in c) printf "%s=%d ", k, c[k] }' "$RUNDIR/perf-$v.txt")
        line+=" | perf: ${pc:-no events}"
      else
        line+=" | perf: failed ($(head -c 200 "$RUNDIR/perf-$v.err" | tr '\n' ' '))"
      fi
    fi
    line+=" | $(proxy_info "$v" "$RUNDIR/$v")"
    echo "$line" >>"$SC"; log "$line"
    # Short connections: system calls (strace -c) and io_uring ops (perf) per connection.
    url="http://$TARGET/ok"
    n0=$(proxy_conns "$v" "$RUNDIR/$v")
    timeout 60 strace -c -f -p "$PXPID" -o "$OUTDIR/raw/strace-short-$v.txt" 2>/dev/null & ST=$!; register_pid "$ST"
    sleep 1
    timeout 20 wrk -t1 -c10 -d3s -H "Connection: close" "$url" >"$RUNDIR/wrk-check.txt" 2>&1 || true
    sleep 0.5; kill -INT "$ST" 2>/dev/null || true; wait "$ST" 2>/dev/null || true
    n1=$(proxy_conns "$v" "$RUNDIR/$v"); n=$((n1-n0))
    per=$(awk -v n="$n" '$4 ~ /^[0-9]+$/ && $NF != "total" && n > 0 {printf "%s %.2f\n", $NF, $4/n}' "$OUTDIR/raw/strace-short-$v.txt" |
          sort -k2,2nr | head -n 14 | awk '{printf "%s=%s ", $1, $2}')
    sline="$(printf '%-17s short, per connection (%d conns): strace: %s' "$v" "$n" "${per:-?}")"
    if ((HAVE_PERF)); then
      n0=$(proxy_conns "$v" "$RUNDIR/$v")
      timeout 60 perf record -q -e io_uring:io_uring_submit_req -p "$PXPID" -o "$RUNDIR/perf-short-$v.data" >/dev/null 2>&1 & PF=$!; register_pid "$PF"
      sleep 1
      timeout 20 wrk -t1 -c10 -d2s -H "Connection: close" "$url" >/dev/null 2>&1 || true
      sleep 0.5; kill -INT "$PF" 2>/dev/null || true; wait "$PF" 2>/dev/null || true
      n1=$(proxy_conns "$v" "$RUNDIR/$v"); n=$((n1-n0))
      if [[ -s $RUNDIR/perf-short-$v.data ]] && ((n > 0)); then
        pc=$(perf script -i "$RUNDIR/perf-short-$v.data" -F trace 2>/dev/null |
             awk -v n="$n" '{for (i=1;i<=NF;i++) if ($i=="opcode") { op=$(i+1); sub(/,$/,"",op); c[op]++ } }
                            END { for (k in c) printf "%s=%.2f ", k, c[k]/n }')
        sline+=" | io_uring ops per conn ($n conns): ${pc:-none}"
      fi
    fi
    echo "$sline" >>"$SC"; log "$sline"
    stop_variant "$v" check
  done
fi

# ---------------------------------------------------------------- optional profile
# PROFILE=1: perf record (flat, cpu-clock in a VM) of each proxy variant during one bulk fetch and a 5 s short run
# (diagnostics only: where halb spends its CPU; not part of the figures).
if ((${PROFILE:-0})) && ((HAVE_PERF)); then
  for v in $VARIANTS; do
    [[ $v == direct ]] && continue
    [[ -n ${BROKEN[$v]:-} ]] && continue
    start_variant "$v" || { stop_variant "$v" profile || true; continue; }
    for sc in bulk short; do
      timeout 60 perf record -q -p "$PXPID" -o "$RUNDIR/prof.data" >/dev/null 2>&1 & PF=$!; register_pid "$PF"
      sleep 0.5
      if [[ $sc == bulk ]]; then curl -s --max-time 60 -o /dev/null "http://$TARGET/big" || true
      else timeout 20 wrk -t1 -c"$SHORT_CONNS" -d5s -H "Connection: close" "http://$TARGET/ok" >/dev/null 2>&1 || true; fi
      kill -INT "$PF" 2>/dev/null || true; wait "$PF" 2>/dev/null || true
      perf report -i "$RUNDIR/prof.data" --sort dso,symbol --stdio 2>/dev/null | grep -E "^ +[0-9]" | sed -E "s/ +$//" | head -n 60 >"$OUTDIR/raw/profile-$v-$sc.txt" || true
      log "profile $v $sc -> raw/profile-$v-$sc.txt"
    done
    stop_variant "$v" profile
  done
fi

# ---------------------------------------------------------------- summary
for v in "${!BROKEN[@]}"; do echo "$v: ${BROKEN[$v]}"; done | sort -u >"$OUTDIR/raw/broken-final.txt"
{ echo "load_after=$(cat /proc/loadavg) rustc_running=$(rustc_count) quiet_wait_total_s=$QUIET_SPENT"; } >>"$OUTDIR/env.txt"
/usr/bin/python3 "$HERE/lib/summarize.py" "$OUTDIR" | tee "$OUTDIR/summary.md"
log "done: $OUTDIR/summary.md"
