# shellcheck shell=bash source-path=SCRIPTDIR
# shellcheck disable=SC2034  # the knobs, RUNDIR, NGX*, T_START, Q_* ... are read by the caller
# The measuring machinery of the suite (../run.sh), shared with the TLS benchmark
# (../../tls/run.sh): one copy, sourced by both. Sourcing it sources ../../l4/lib/common.sh
# (PID registry + EXIT trap that kills by PID, watchdog, wait_quiet, CPU accounting from
# /proc, require_tools) and ../../l4/lib/backend-nginx.sh, and sets `set -E` with an ERR
# trap that logs the failing line.
#
# The caller sets HERE (its directory: HERE/lib/summarize.py, HERE/results/), REPO,
# ALL_WORKLOADS, WORKLOADS, VARIANTS, BE (nginx's host:port), BACKEND_PORT, PROXY_CORE,
# LOAD_CORE, and calls, in this order:
#   measure_knobs QUICK_MAX_RUNTIME   QUICK=1's short defaults, then the shared knobs' defaults
#                                     (before the caller's own REPEATS DURATION WARMUP)
#   measure_require_cores             python3, 2 cores, PROXY_CORE != LOAD_CORE
#   measure_check_args PORT_KNOB...   known WORKLOADS, the ports (named by their knobs) free
#   measure_outdir                    OUTDIR/{raw,runs,hist,plots}, run.log (fd 3), summary on exit
#   measure_build                     cargo build --release per BUILD, both binaries there
#   measure_setup NAME                watchdog, T_START, pinned to LOAD_CORE, RUNDIR (+ www/)
#   measure_backend                   nginx on BE from RUNDIR/www: NGX, NGX_WORKERS
#   measure_env_txt                   env.txt, around the caller's env_cpu, env_tools, env_knobs
#   run_rotated                       a round of the caller's run_variant, in rotated order
#   measure_loadtest / measure_once   the measured runs (runs/*.json through record.py)
#   measure_proxy_stop                a proxy stopped, its exit status into raw/
#   measure_finish                    raw/broken.txt (BROKEN), env.txt's last line, summary.md
# BUILDERS: the processes that flag a measured run while they run (someone is building):
#   rustc (the suite); the TLS benchmark counts cargo too.

MEASURE_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../l4/lib/common.sh
source "$MEASURE_LIB/../../l4/lib/common.sh"
# shellcheck source=../../l4/lib/backend-nginx.sh
source "$MEASURE_LIB/../../l4/lib/backend-nginx.sh"
set -E
trap '[[ $BASHPID == "$$" ]] && log "error (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

BUILDERS=rustc
declare -gA CMD_SEEN=() BROKEN=()

measure_knobs() { # QUICK_MAX_RUNTIME
  QUICK=${QUICK:-0}
  if ((QUICK)); then
    : "${REPEATS:=1}" "${DURATION:=3}" "${WARMUP:=1}" "${QUIET_SECS:=1}" "${QUIET_TIMEOUT:=5}"
    : "${QUIET_BUDGET:=20}" "${MAX_ATTEMPTS:=1}" "${MAX_RUNTIME:=$1}"
  fi
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
  HZ=$CLK_TCK NCPU=$(grep -c "^cpu[0-9]" /proc/stat)
}

# ---------------------------------------------------------------- preflight
measure_require_cores() {
  [[ -x /usr/bin/python3 ]] || { echo "/usr/bin/python3 is needed (apt-get install -y python3)" >&2; exit 2; }
  ((NCPU >= 2)) || die "needs at least 2 cores (proxy core $PROXY_CORE, load core $LOAD_CORE)"
  ((PROXY_CORE != LOAD_CORE)) || die "PROXY_CORE and LOAD_CORE must differ"
}

measure_check_args() { # PORT_KNOB...
  local w k knobs
  for w in $WORKLOADS; do [[ " $ALL_WORKLOADS " == *" $w "* ]] || die "unknown workload $w ($ALL_WORKLOADS)"; done
  knobs=$(IFS=/; echo "$*")
  for k in "$@"; do
    if ss -Hltn "sport = :${!k}" | grep -q .; then die "port ${!k} is already in use (set $knobs)"; fi
  done
}

# ---------------------------------------------------------------- results directory
measure_outdir() {
  mkdir -p "$OUTDIR"/{raw,runs,hist,plots}
  OUTDIR=$(cd "$OUTDIR" && pwd)
  log "results -> $OUTDIR"
  exec 3>>"$OUTDIR/run.log"
  on_exit "[[ -s '$OUTDIR/summary.md' ]] || { echo '**INCOMPLETE RUN** (stopped early: see run.log)'; echo; /usr/bin/python3 '$HERE/lib/summarize.py' '$OUTDIR' '$LOADTEST_BIN'; } >'$OUTDIR/summary.md' 2>&1"
  echo "# $(date -Is) $0 QUICK=$QUICK VARIANTS='$VARIANTS' WORKLOADS='$WORKLOADS' REPEATS=$REPEATS DURATION=$DURATION" >&3
}
summarize() { /usr/bin/python3 "$HERE/lib/summarize.py" "$OUTDIR" "$LOADTEST_BIN"; }

# ---------------------------------------------------------------- build
stale() { [[ ! -x $1 ]] || [[ -n $(find "$REPO/src" "$REPO/loadtest/src" "$REPO/Cargo.toml" "$REPO/Cargo.lock" -newer "$1" -print -quit 2>/dev/null) ]]; }
measure_build() {
  local need_build
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
}

# builders_count -> how many processes named in BUILDERS run right now
builders_count() {
  local n=0 b c
  for b in $BUILDERS; do c=$(pgrep -c -x "$b" 2>/dev/null || true); n=$((n + ${c:-0})); done
  echo "$n"
}

# ---------------------------------------------------------------- setup
measure_setup() { # NAME -> RUNDIR=/tmp/halb-bench-NAME.XXXXXX, removed on exit
  start_watchdog "$MAX_RUNTIME"
  T_START=$SECONDS
  # Everything this script starts runs on LOAD_CORE unless pinned elsewhere (the proxies).
  taskset -pc "$LOAD_CORE" $$ >/dev/null
  RUNDIR=$(mktemp -d "/tmp/halb-bench-$1.XXXXXX")
  on_exit "rm -rf '$RUNDIR'"
  mkdir -p "$RUNDIR/www"
}

measure_backend() {
  NGX=$(backend_start "$BE" "$RUNDIR/www" "$RUNDIR/nginx" "$LOAD_CORE"); register_pid "$NGX"
  wait_port 127.0.0.1 "$BACKEND_PORT" 5 || die "nginx did not start"
  sleep 0.3; NGX_WORKERS=$(children "$NGX")
  [[ $(curl -sf --max-time 5 "http://$BE/ok") == ok ]] || die "nginx /ok probe failed"
}

# measure_env_txt: the caller defines env_tools (pinning, versions) and env_knobs, and may
# define env_cpu (lines after the CPU model)
env_cpu() { :; }
measure_env_txt() {
  {
    echo "date_utc=$(date -u -Is)"
    echo "cpu_model=$(lscpu | awk -F': +' '/^Model name/{print $2; exit}') ncpu=$NCPU $(lscpu | awk -F': +' '/^Hypervisor vendor/{print "hypervisor=" $2}')"
    env_cpu
    echo "memory=$(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel=$(uname -sr) $(uname -m)"
    echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    env_tools
    echo "git_head=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none) dirty_files=$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l)"
    echo "sysctl: $(sysctl -n net.ipv4.tcp_tw_reuse net.ipv4.ip_local_port_range net.core.somaxconn 2>/dev/null | tr '\n\t' '  ')(tcp_tw_reuse ip_local_port_range somaxconn)"
    echo "ulimit_n=$(ulimit -n)"
    env_knobs
    echo "load_before=$(cat /proc/loadavg) rustc_running=$(rustc_count)"
  } >"$OUTDIR/env.txt"
}

# note_cmd LINE : LINE into commands.txt, once
note_cmd() { [[ -n ${CMD_SEEN[$1]:-} ]] && return 0; CMD_SEEN[$1]=1; echo "$1" >>"$OUTDIR/commands.txt"; }
# hide_rundir TEXT -> TEXT with the temporary directory written $RUNDIR
hide_rundir() { echo "${1//"$RUNDIR"/\$RUNDIR}"; }

# ---------------------------------------------------------------- measuring
QUIET_SPENT=0
quiet_gate() { # sets Q_OK Q_WAIT Q_PCT
  local to=$QUIET_TIMEOUT
  ((QUIET_SPENT >= QUIET_BUDGET)) && to=$QUIET_SECS
  Q_OK=1; wait_quiet "$QUIET_MAX_PCT" "$QUIET_SECS" "$to" || Q_OK=0
  Q_WAIT=$QUIET_WAITED Q_PCT=$QUIET_LAST_PCT
  QUIET_SPENT=$((QUIET_SPENT + QUIET_WAITED))
}
status_kib() { awk -v k="$2:" '$1==k {print $2}' /proc/"$1"/status 2>/dev/null || true; }

# measure_once NAME PXPID CMD... : quiet gate, snapshots around CMD, one runs/NAME-aN.json
# (CMD's stdout is its JSON result; wrk runs are recognised by the caller's GENERATOR; WL,
# VAR, ROUND from the caller too; PXPID may be empty: no proxy). Retries a disturbed run
# (other processes > NOISE_MAX_PCT of the machine, BUILDERS running) up to MAX_ATTEMPTS.
measure_once() {
  local name=$1 px=$2; shift 2
  local attempt=1 kept raw t0 t1 w0 w1 p0 p1 s0 s1 b0 b1 r0 r1 ct hwm_reset rss_peak other why
  while :; do
    raw=$OUTDIR/raw/$name-a$attempt.out
    quiet_gate
    hwm_reset=0 rss_peak=""
    if [[ -n $px ]]; then { echo 5 >"/proc/$px/clear_refs"; } 2>/dev/null && hwm_reset=1; fi
    # shellcheck disable=SC2086  # NGX_WORKERS is a list of PIDs
    { t0=$(total_busy); b0=$(proc_ticks "$NGX" $NGX_WORKERS); r0=$(builders_count)
      p0=0 s0=0; [[ -n $px ]] && { p0=$(proc_ticks "$px"); s0=$(proc_sched_ns "$px"); }
      w0=$(date +%s.%N); }
    TIMEFORMAT='%U %S'
    { time timeout $((DURATION + 90)) "$@" >"$raw" 2>"$raw.err"; } 2>"$RUNDIR/time.txt" || true
    # shellcheck disable=SC2086
    { w1=$(date +%s.%N); t1=$(total_busy); b1=$(proc_ticks "$NGX" $NGX_WORKERS); r1=$(builders_count)
      p1=0 s1=0; [[ -n $px ]] && { p1=$(proc_ticks "$px"); s1=$(proc_sched_ns "$px"); rss_peak=$(status_kib "$px" VmHWM); }; }
    ct=$(awk '{printf "%.3f", $1+$2}' "$RUNDIR/time.txt")
    other=$(awk -v t="$((t1-t0))" -v p="$((p1-p0))" -v b="$((b1-b0))" -v c="$ct" -v hz="$HZ" -v n="$NCPU" -v w0="$w0" -v w1="$w1" \
              'BEGIN{o=t/hz-p/hz-b/hz-c; if (o<0) o=0; printf "%.1f", 100*o/((w1-w0)*n)}')
    why=""
    ((Q_OK)) || why+="no quiet start; "
    ((r0 + r1 > 0)) && why+="${BUILDERS// //} running; "
    awk -v o="$other" -v m="$NOISE_MAX_PCT" 'BEGIN{exit !(o > m)}' && why+="interference ${other}%; "
    kept=1
    [[ -n $why ]] && ((attempt < MAX_ATTEMPTS)) && kept=0
    # shellcheck disable=SC2153  # GENERATOR WL VAR ROUND: set by the caller for this call
    /usr/bin/python3 "$MEASURE_LIB/record.py" "$OUTDIR" name="$name" attempt="$attempt" kept="$kept" \
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

# measure_loadtest WORKLOAD VARIANT ROUND PXPID URL CMD... : CMD (halb-loadtest and its
# options) against URL for WARMUP s, not measured (connections, caches, the proxy's pools),
# then for DURATION s through measure_once, its percentiles in hist/WORKLOAD-VARIANT-rROUND.hgrm
measure_loadtest() {
  local wl=$1 v=$2 round=$3 px=$4 url=$5; shift 5
  timeout $((WARMUP + 60)) "$@" --duration "${WARMUP}s" --json "$url" >/dev/null 2>&1 ||
    log "warm-up of $wl on $v reported errors"
  local hist=$OUTDIR/hist/$wl-$v-r$round.hgrm
  local -a cmd=("$@" --duration "${DURATION}s" --json --hist-out "$hist" "$url")
  note_cmd "$(hide_rundir "$(printf '%q ' "${cmd[@]}")")  # $wl, $v"
  GENERATOR=halb-loadtest WL=$wl VAR=$v ROUND=$round measure_once "$wl-$v-r$round" "$px" "${cmd[@]}"
}

# measure_proxy_stop PXPID PROXY_RUNDIR VARIANT WHAT ROUND : stop the proxy (TERM, then KILL),
# its exit status and the head of its stderr appended to raw/proxy-VARIANT-WHAT.log
measure_proxy_stop() {
  local px=$1 rd=$2 v=$3 what=$4 round=$5 st=0
  stop_pid "$px" 10 || log "$v ($what) needed SIGKILL"
  wait "$px" 2>/dev/null || st=$?
  { echo "== round $round: exit status $st"; head -n 30 "$rd/proxy.err" 2>/dev/null; } >>"$OUTDIR/raw/proxy-$v-$what.log" || true
}

# rotate N LIST... -> the list rotated left by N
rotate() { local n=$1; shift; local -a a=("$@"); local k=$((n % ${#a[@]})); echo "${a[@]:k}" "${a[@]:0:k}"; }
# run_rotated ROUND WHAT WORKLOAD... : the caller's run_variant VARIANT WHAT ROUND WORKLOADS...
# for each variant of VLIST; variants and workloads in an order rotated by ROUND
run_rotated() {
  local round=$1 what=$2 v; shift 2
  local -a wls
  read -r -a wls <<<"$(rotate $((round - 1)) "$@")"
  for v in $(rotate $((round - 1)) "${VLIST[@]}"); do
    log "-- $v ($what): ${wls[*]}"
    run_variant "$v" "$what" "$round" "${wls[@]}"
  done
}

# ---------------------------------------------------------------- end
measure_finish() {
  local k
  for k in "${!BROKEN[@]}"; do echo "$k: ${BROKEN[$k]}"; done | sort >"$OUTDIR/raw/broken.txt"
  find "$OUTDIR/raw" -name '*.err' -empty -delete   # the generators' stderr, kept when not empty
  echo "load_after=$(cat /proc/loadavg) rustc_running=$(rustc_count) quiet_wait_total_s=$QUIET_SPENT measuring_s=$((SECONDS - T_START))" >>"$OUTDIR/env.txt"
  summarize >"$OUTDIR/summary.md.tmp" && mv "$OUTDIR/summary.md.tmp" "$OUTDIR/summary.md"
  cat "$OUTDIR/summary.md"
  log "done in $((SECONDS - T_START)) s: $OUTDIR/summary.md"
}
