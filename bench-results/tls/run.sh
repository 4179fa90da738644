#!/usr/bin/env bash
# TLS termination: halb vs HAProxy, driven by halb-loadtest over https://, pinned, on
# 127.0.0.1 only. One command; installs nothing (it says what is missing and how to get it).
#
#   proxy (one at a time) ........ core PROXY_CORE (default 1), alone
#   nginx backend + halb-loadtest . core LOAD_CORE (default 0)
#
# Workloads (halb-loadtest, one worker core, CONNS connections, GET /ok with a 3-byte body,
# SNI bench.test; VERIFY=insecure (default): the generator checks the handshake signature
# but not the chain, which curl and openssl check once per proxy; VERIFY=cacert: the
# generator verifies the chain too, and its core saturates first on ECDSA handshakes):
#   full-ecdsa        a new connection per request (--close), full TLS 1.3 handshake, no
#                     resumption, ECDSA P-256 certificate -> handshakes/s, proxy CPU µs/handshake
#   full-rsa          the same with an RSA 2048 certificate
#   resume            --close --tls-resume: TLS 1.3 resumption (tickets), ECDSA, RESUME_CONNS
#                     (8) connections: the generator's rustls cache keeps 8 tickets per server,
#                     more connections empty it. The share actually resumed is tls.resumed
#   keepalive         keep-alive, many requests per connection, ECDSA -> req/s, µs/req
#   full-ecdsa-tls12  full-ecdsa pinned to TLS 1.2 (--tls-version 1.2)
# Proxies: the suite's l7 configurations (../suite/lib/proxies.sh: one thread on one core,
#   no per-request log, keep-alive and reuse to nginx) plus a TLS listener with one
#   certificate and each proxy's default ciphers, versions, session cache and tickets
#   (lib/tls.sh). One proxy process per (round, proxy, certificate).
#
# Per run: halb-loadtest's JSON (req/s, latency percentiles, errors by kind, tls.handshakes,
#   tls.resumed, tls.version), proxy CPU = utime+stime of the proxy process from
#   /proc/PID/stat over the measured run (all threads; schedstat ns as a cross-check), proxy
#   peak RSS (VmHWM reset before each run), what else used the machine. Recorded by the
#   suite's lib/record.py. REPEATS rounds; the order of certificates, proxies and workloads
#   rotates each round; medians. The cipher suite, group and signature each proxy picks is
#   asked once per proxy and certificate with `openssl s_client` offering halb-loadtest's
#   (rustls) preferences.
#
# Output: results/<UTC date-time>/ summary.md (tables, ratios halb/HAProxy), summary.json,
#   runs/*.json, hist/*.hgrm, plots/*.svg, env.txt, commands.txt, raw/, run.log.
#   Certificates and keys live in a temporary directory, deleted on exit.
#
# Usage:   bench-results/tls/run.sh                 # ~7 min (3 rounds, 8 s runs)
#          QUICK=1 bench-results/tls/run.sh         # ~1.5 min smoke run (1 round, 3 s runs)
#          VARIANTS=haproxy WORKLOADS="full-ecdsa resume" bench-results/tls/run.sh
# Knobs (defaults below): WORKLOADS VARIANTS REPEATS DURATION WARMUP CONNS RESUME_CONNS VERIFY PROXY_CORE
#   LOAD_CORE PORT_TLS PORT_PLAIN BACKEND_PORT START_LOAD_MAX START_QUIET_TIMEOUT QUIET_*
#   NOISE_MAX_PCT MAX_ATTEMPTS MAX_RUNTIME BUILD HALB_BIN LOADTEST_BIN OUTDIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SUITE=$REPO/bench-results/suite
# PID registry + EXIT trap (kill by PID), watchdog, wait_quiet, CPU accounting, require_tools
# shellcheck source=../l4/lib/common.sh
source "$REPO/bench-results/l4/lib/common.sh"
# shellcheck source=../l4/lib/backend-nginx.sh
source "$REPO/bench-results/l4/lib/backend-nginx.sh"
# shellcheck source=../suite/lib/proxies.sh
source "$SUITE/lib/proxies.sh"
# shellcheck source=lib/tls.sh
source "$HERE/lib/tls.sh"
set -E
trap '[[ $BASHPID == "$$" ]] && log "error (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

QUICK=${QUICK:-0}
if ((QUICK)); then
  : "${REPEATS:=1}" "${DURATION:=3}" "${WARMUP:=1}" "${QUIET_SECS:=1}" "${QUIET_TIMEOUT:=5}"
  : "${QUIET_BUDGET:=20}" "${MAX_ATTEMPTS:=1}" "${START_QUIET_TIMEOUT:=30}" "${MAX_RUNTIME:=400}"
fi
ALL_WORKLOADS="full-ecdsa full-rsa resume keepalive full-ecdsa-tls12"
WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}
VARIANTS=${VARIANTS:-"haproxy halb"}
REPEATS=${REPEATS:-3} DURATION=${DURATION:-8} WARMUP=${WARMUP:-2} CONNS=${CONNS:-50}
RESUME_CONNS=${RESUME_CONNS:-8}      # see the resume workload above and README.md
VERIFY=${VERIFY:-insecure}           # insecure | cacert: what halb-loadtest verifies
PROXY_CORE=${PROXY_CORE:-1} LOAD_CORE=${LOAD_CORE:-0}
PORT_TLS=${PORT_TLS:-18443} PORT_PLAIN=${PORT_PLAIN:-18380} BACKEND_PORT=${BACKEND_PORT:-18382}
SNI=bench.test
START_LOAD_MAX=${START_LOAD_MAX:-0.5}         # before the first run: 1-min load below this ...
START_QUIET_TIMEOUT=${START_QUIET_TIMEOUT:-900} # ... and no cargo/rustc, waiting at most this (s)
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

# ---------------------------------------------------------------- preflight
require_tools haproxy nginx openssl curl taskset ss
[[ -x /usr/bin/python3 ]] || { echo "/usr/bin/python3 is needed (apt-get install -y python3)" >&2; exit 2; }
((NCPU >= 2)) || die "needs at least 2 cores (proxy core $PROXY_CORE, load core $LOAD_CORE)"
((PROXY_CORE != LOAD_CORE)) || die "PROXY_CORE and LOAD_CORE must differ"
case $VERIFY in insecure|cacert) ;; *) die "VERIFY must be insecure or cacert" ;; esac
for v in $VARIANTS; do case $v in haproxy|halb) ;; *) die "unknown variant $v (haproxy, halb)" ;; esac; done
for w in $WORKLOADS; do [[ " $ALL_WORKLOADS " == *" $w "* ]] || die "unknown workload $w ($ALL_WORKLOADS)"; done
for p in "$PORT_TLS" "$PORT_PLAIN" "$BACKEND_PORT"; do
  if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is already in use (set PORT_TLS/PORT_PLAIN/BACKEND_PORT)"; fi
done

mkdir -p "$OUTDIR"/{raw,runs,hist,plots}
OUTDIR=$(cd "$OUTDIR" && pwd)
log "results -> $OUTDIR"
exec 3>>"$OUTDIR/run.log"
summarize() { /usr/bin/python3 "$HERE/lib/summarize.py" "$OUTDIR" "$LOADTEST_BIN"; }
on_exit "[[ -s '$OUTDIR/summary.md' ]] || { echo '**INCOMPLETE RUN** (stopped early: see run.log)'; echo; /usr/bin/python3 '$HERE/lib/summarize.py' '$OUTDIR' '$LOADTEST_BIN'; } >'$OUTDIR/summary.md' 2>&1"
echo "# $(date -Is) $0 QUICK=$QUICK VARIANTS='$VARIANTS' WORKLOADS='$WORKLOADS' REPEATS=$REPEATS DURATION=$DURATION" >&3

# ---------------------------------------------------------------- build (as the suite does)
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

# ---------------------------------------------------------------- quiet start
# Nobody building (cargo/rustc) and the 1-minute load below START_LOAD_MAX, bounded.
busy_builders() { echo $(( $(pgrep -c -x cargo 2>/dev/null || true) + $(pgrep -c -x rustc 2>/dev/null || true) )); }
load1() { cut -d' ' -f1 /proc/loadavg; }
START_WAITED=0 START_QUIET=0
while ((START_WAITED < START_QUIET_TIMEOUT)); do
  if (($(busy_builders) == 0)) && awk -v l="$(load1)" -v m="$START_LOAD_MAX" 'BEGIN{exit !(l < m)}'; then
    START_QUIET=1; break
  fi
  ((START_WAITED % 60 == 0)) && log "waiting for a quiet machine: load $(load1), cargo/rustc $(busy_builders) (max ${START_QUIET_TIMEOUT}s)"
  sleep 5; START_WAITED=$((START_WAITED + 5))
done
((START_QUIET)) || log "machine not quiet after ${START_QUIET_TIMEOUT}s (load $(load1), cargo/rustc $(busy_builders)): going on, runs are flagged"

# ---------------------------------------------------------------- setup
start_watchdog "$MAX_RUNTIME"
T_START=$SECONDS
# Everything this script starts runs on LOAD_CORE unless pinned elsewhere (the proxies).
taskset -pc "$LOAD_CORE" $$ >/dev/null
RUNDIR=$(mktemp -d /tmp/halb-bench-tls.XXXXXX)
on_exit "rm -rf '$RUNDIR'"
mkdir -p "$RUNDIR/www"
tls_make_certs "$RUNDIR/certs" "$SNI" || die "certificate generation with openssl failed"
CAFILE=$RUNDIR/certs/ca-all.pem
chmod -R a+rX "$RUNDIR/www"
for k in ecdsa rsa; do
  { echo "== leaf-$k.pem (leaf certificate + PKCS#8 key; the chain sent is the leaf alone)"
    openssl x509 -in "$RUNDIR/certs/leaf-$k.crt" -noout -subject -issuer -ext subjectAltName
    openssl x509 -in "$RUNDIR/certs/leaf-$k.crt" -noout -text | grep -E "Public Key Algorithm|Public-Key|ASN1 OID|Signature Algorithm" | sort -u
  } >>"$OUTDIR/raw/certs.txt"
done

NGX=$(backend_start "$BE" "$RUNDIR/www" "$RUNDIR/nginx" "$LOAD_CORE"); register_pid "$NGX"
wait_port 127.0.0.1 "$BACKEND_PORT" 5 || die "nginx did not start"
sleep 0.3; NGX_WORKERS=$(children "$NGX")
[[ $(curl -sf --max-time 5 "http://$BE/ok") == ok ]] || die "nginx /ok probe failed"

{
  echo "date_utc=$(date -u -Is)"
  echo "cpu_model=$(lscpu | awk -F': +' '/^Model name/{print $2; exit}') ncpu=$NCPU $(lscpu | awk -F': +' '/^Hypervisor vendor/{print "hypervisor=" $2}')"
  echo "cpu_flags_crypto=$(grep -m1 -o -w -E 'aes|pclmulqdq|avx2|avx512f|avx512ifma|sha_ni|vaes|vpclmulqdq|adx|bmi2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "memory=$(awk '/^MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel=$(uname -sr) $(uname -m)"
  echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "pinning: proxy -> core $PROXY_CORE (alone); nginx worker + halb-loadtest + this script -> core $LOAD_CORE"
  echo "haproxy: $(haproxy -v | sed -n 1p); $(haproxy -vv 2>/dev/null | grep -E '^(Built with|Running on) OpenSSL' | tr '\n' ';')"
  echo "openssl: $(openssl version)"
  echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "halb: $("$HALB_BIN" --version 2>&1 | head -1) path=$HALB_BIN sha256=$(sha256sum "$HALB_BIN" 2>/dev/null | cut -c1-16)"
  echo "halb-loadtest: $("$LOADTEST_BIN" --version 2>&1 | head -1) path=$LOADTEST_BIN sha256=$(sha256sum "$LOADTEST_BIN" 2>/dev/null | cut -c1-16)"
  echo "git_head=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none) dirty_files=$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l)"
  echo "sysctl: $(sysctl -n net.ipv4.tcp_tw_reuse net.ipv4.ip_local_port_range net.core.somaxconn 2>/dev/null | tr '\n\t' '  ')(tcp_tw_reuse ip_local_port_range somaxconn)"
  echo "ulimit_n=$(ulimit -n)"
  echo "knobs: QUICK=$QUICK VARIANTS='$VARIANTS' WORKLOADS='$WORKLOADS' REPEATS=$REPEATS DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS=$CONNS RESUME_CONNS=$RESUME_CONNS VERIFY=$VERIFY"
  echo "quiet_start=$START_QUIET waited_s=$START_WAITED (load1 < $START_LOAD_MAX and no cargo/rustc)"
  echo "load_before=$(cat /proc/loadavg) rustc_running=$(rustc_count)"
} >"$OUTDIR/env.txt"
cp "$RUNDIR/nginx/nginx.conf" "$OUTDIR/raw/nginx.conf"
{
  echo "# $0 (QUICK=$QUICK), $(date -u -Is)"
  echo "# certificates: openssl genpkey/req/x509 into a temporary directory (lib/tls.sh tls_make_certs); raw/certs.txt"
  echo "# \$RUNDIR: a temporary directory (certificates, proxy configurations, nginx), deleted on exit"
  echo "taskset -c $LOAD_CORE nginx -p \$RUNDIR/nginx -c \$RUNDIR/nginx/nginx.conf   # raw/nginx.conf"
} >"$OUTDIR/commands.txt"
declare -A CMD_SEEN=()
note_cmd() { [[ -n ${CMD_SEEN[$1]:-} ]] && return 0; CMD_SEEN[$1]=1; echo "$1" >>"$OUTDIR/commands.txt"; }

# ---------------------------------------------------------------- workloads
cert_of() { [[ $1 == full-rsa ]] && echo rsa || echo ecdsa; }
load_args() { # WORKLOAD -> halb-loadtest options of that workload
  case $1 in
    full-ecdsa|full-rsa) echo "-c $CONNS --close --tls-version 1.3" ;;
    resume) echo "-c $RESUME_CONNS --close --tls-resume --tls-version 1.3" ;;
    keepalive) echo "-c $CONNS --tls-version 1.3" ;;
    full-ecdsa-tls12) echo "-c $CONNS --close --tls-version 1.2" ;;
  esac
}
tls_version_of() { [[ $1 == *tls12 ]] && echo 1.2 || echo 1.3; }

QUIET_SPENT=0
quiet_gate() { # the suite's gate: sets Q_OK Q_WAIT Q_PCT
  local to=$QUIET_TIMEOUT
  ((QUIET_SPENT >= QUIET_BUDGET)) && to=$QUIET_SECS
  Q_OK=1; wait_quiet "$QUIET_MAX_PCT" "$QUIET_SECS" "$to" || Q_OK=0
  Q_WAIT=$QUIET_WAITED Q_PCT=$QUIET_LAST_PCT
  QUIET_SPENT=$((QUIET_SPENT + QUIET_WAITED))
}
status_kib() { awk -v k="$2:" '$1==k {print $2}' /proc/"$1"/status 2>/dev/null || true; }

# measure_once NAME PXPID CMD... : quiet gate, snapshots around CMD, one runs/NAME-aN.json
# (the suite's measure_once, with cargo counted as a builder too). Retries a disturbed run.
measure_once() {
  local name=$1 px=$2; shift 2
  local attempt=1 kept raw t0 t1 w0 w1 p0 p1 s0 s1 b0 b1 r0 r1 ct hwm_reset rss_peak other why
  while :; do
    raw=$OUTDIR/raw/$name-a$attempt.out
    quiet_gate
    hwm_reset=0 rss_peak=""
    { echo 5 >"/proc/$px/clear_refs"; } 2>/dev/null && hwm_reset=1
    # shellcheck disable=SC2086  # NGX_WORKERS is a list of PIDs
    { t0=$(total_busy); b0=$(proc_ticks "$NGX" $NGX_WORKERS); r0=$(busy_builders)
      p0=$(proc_ticks "$px"); s0=$(proc_sched_ns "$px"); w0=$(date +%s.%N); }
    TIMEFORMAT='%U %S'
    { time timeout $((DURATION + 90)) "$@" >"$raw" 2>"$raw.err"; } 2>"$RUNDIR/time.txt" || true
    # shellcheck disable=SC2086
    { w1=$(date +%s.%N); t1=$(total_busy); b1=$(proc_ticks "$NGX" $NGX_WORKERS); r1=$(busy_builders)
      p1=$(proc_ticks "$px"); s1=$(proc_sched_ns "$px"); rss_peak=$(status_kib "$px" VmHWM); }
    ct=$(awk '{printf "%.3f", $1+$2}' "$RUNDIR/time.txt")
    other=$(awk -v t="$((t1-t0))" -v p="$((p1-p0))" -v b="$((b1-b0))" -v c="$ct" -v hz="$HZ" -v n="$NCPU" -v w0="$w0" -v w1="$w1" \
              'BEGIN{o=t/hz-p/hz-b/hz-c; if (o<0) o=0; printf "%.1f", 100*o/((w1-w0)*n)}')
    why=""
    ((Q_OK)) || why+="no quiet start; "
    ((r0 + r1 > 0)) && why+="cargo/rustc running; "
    awk -v o="$other" -v m="$NOISE_MAX_PCT" 'BEGIN{exit !(o > m)}' && why+="interference ${other}%; "
    kept=1
    [[ -n $why ]] && ((attempt < MAX_ATTEMPTS)) && kept=0
    /usr/bin/python3 "$SUITE/lib/record.py" "$OUTDIR" name="$name" attempt="$attempt" kept="$kept" \
      noise="$why" raw="$raw" generator=halb-loadtest workload="$WL" variant="$VAR" round="$ROUND" \
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
  local wl=$1 v=$2 round=$3 px=$4 args
  read -r -a args <<<"$(load_args "$wl")"
  local url=https://127.0.0.1:$PORT_TLS/ok
  local -a verify=(--insecure); [[ $VERIFY == cacert ]] && verify=(--cacert "$CAFILE")
  local -a base=(taskset -c "$LOAD_CORE" "$LOADTEST_BIN" "${args[@]}" "${verify[@]}" --sni "$SNI" --expect-body-size 3)
  # warm-up: not measured (connections, caches, the proxy's pools)
  timeout $((WARMUP + 60)) "${base[@]}" --duration "${WARMUP}s" --json "$url" >/dev/null 2>&1 ||
    log "warm-up of $wl on $v reported errors"
  local hist=$OUTDIR/hist/$wl-$v-r$round.hgrm
  local -a cmd=("${base[@]}" --duration "${DURATION}s" --json --hist-out "$hist" "$url")
  note_cmd "$(printf '%q ' "${cmd[@]}" | sed "s|$RUNDIR|\$RUNDIR|g")  # $wl, $v"
  WL=$wl VAR=$v ROUND=$round measure_once "$wl-$v-r$round" "$px" "${cmd[@]}"
}

# check_proxy : answers /ok over TLS (certificate verified), keep-alive and close
check_proxy() {
  local -a c=(curl -s --max-time 5 --cacert "$CAFILE" --resolve "$SNI:$PORT_TLS:127.0.0.1")
  [[ $("${c[@]}" "https://$SNI:$PORT_TLS/ok") == ok ]] || return 1
  [[ $("${c[@]}" -H "Connection: close" -o /dev/null -w '%{http_code}' "https://$SNI:$PORT_TLS/ok") == 200 ]]
}

declare -A BROKEN=() NEGOTIATED=()
# run_variant VARIANT CERT ROUND WORKLOADS...
run_variant() {
  local v=$1 cert=$2 round=$3; shift 3
  local rd=$RUNDIR/$v-$cert px wl st=0 ver
  [[ -n ${BROKEN[$v-$cert]:-} ]] && return 0
  rm -rf "$rd"
  if ! tls_proxy_start "$v" "127.0.0.1:$PORT_TLS" "127.0.0.1:$PORT_PLAIN" "$BE" "$RUNDIR/certs/leaf-$cert.pem" "$rd" "$PROXY_CORE" 2>"$RUNDIR/start.err" || [[ -z $PROXY_PID ]]; then
    BROKEN[$v-$cert]="failed to start: $(head -c 300 "$RUNDIR/start.err" | tr '\n' ' ')"; log "$v ($cert): ${BROKEN[$v-$cert]}"; return 0
  fi
  px=$PROXY_PID; register_pid "$px"
  note_cmd "${PROXY_CMD//"$RUNDIR"/\$RUNDIR}   # raw/$v-$cert.$([[ $v == halb ]] && echo toml || echo cfg)"
  if [[ $v == halb ]]; then sed "s|$RUNDIR|\$RUNDIR|g" "$rd/halb.toml" >"$OUTDIR/raw/$v-$cert.toml"
  else sed "s|$RUNDIR|\$RUNDIR|g" "$rd/haproxy.cfg" >"$OUTDIR/raw/$v-$cert.cfg"; fi
  if ! suite_proxy_ready "$v" "$rd" "$PORT_TLS" "$px" || ! check_proxy; then
    BROKEN[$v-$cert]="not ready or wrong answers; stderr: $(tail -c 300 "$rd/proxy.err" 2>/dev/null | tr '\n' ' ')"
    log "$v ($cert): ${BROKEN[$v-$cert]}"; stop_pid "$px" 5 || true; return 0
  fi
  for wl in "$@"; do
    ver=$(tls_version_of "$wl")
    if [[ -z ${NEGOTIATED[$v-$cert-$ver]:-} ]]; then
      NEGOTIATED[$v-$cert-$ver]=$(tls_negotiated "127.0.0.1:$PORT_TLS" "$SNI" "$CAFILE" "$ver" || true)
      echo "$v $cert $ver ${NEGOTIATED[$v-$cert-$ver]}" >>"$OUTDIR/raw/negotiated.txt"
    fi
    run_workload "$wl" "$v" "$round" "$px"
    if ! is_running "$px"; then
      BROKEN[$v-$cert]="proxy died during $wl (round $round)"; log "${BROKEN[$v-$cert]}"; return 0
    fi
  done
  stop_pid "$px" 10 || log "$v ($cert) needed SIGKILL"
  wait "$px" 2>/dev/null || st=$?
  { echo "== round $round: exit status $st"; head -n 30 "$rd/proxy.err" 2>/dev/null; } >>"$OUTDIR/raw/proxy-$v-$cert.log" || true
}

# rotate N LIST... -> the list rotated left by N
rotate() { local n=$1; shift; local -a a=("$@"); local k=$((n % ${#a[@]})); echo "${a[@]:k}" "${a[@]:0:k}"; }

read -r -a VLIST <<<"$VARIANTS"
declare -A BY_CERT=()
for w in $WORKLOADS; do kind=$(cert_of "$w"); BY_CERT[$kind]+="${BY_CERT[$kind]:+ }$w"; done
CERTS=()
for kind in ecdsa rsa; do [[ -n ${BY_CERT[$kind]:-} ]] && CERTS+=("$kind"); done
NWL=$(wc -w <<<"$WORKLOADS")
NRUNS=$((REPEATS * ${#VLIST[@]} * NWL))
log "plan: $REPEATS rounds x proxies [$VARIANTS] x workloads [$WORKLOADS] = $NRUNS runs of ${DURATION}s (~$(( NRUNS * (DURATION + WARMUP + QUIET_SECS + 2) / 60 + 1 )) min)"

for ((round = 1; round <= REPEATS; round++)); do
  log "== round $round/$REPEATS"
  for cert in $(rotate $((round - 1)) "${CERTS[@]}"); do
    read -r -a wls <<<"${BY_CERT[$cert]}"
    read -r -a wls <<<"$(rotate $((round - 1)) "${wls[@]}")"
    for v in $(rotate $((round - 1)) "${VLIST[@]}"); do
      log "-- $v ($cert): ${wls[*]}"
      run_variant "$v" "$cert" "$round" "${wls[@]}"
    done
  done
done

for k in "${!BROKEN[@]}"; do echo "$k: ${BROKEN[$k]}"; done | sort >"$OUTDIR/raw/broken.txt"
find "$OUTDIR/raw" -name '*.err' -empty -delete   # the generator's stderr, kept when not empty
echo "load_after=$(cat /proc/loadavg) rustc_running=$(rustc_count) quiet_wait_total_s=$QUIET_SPENT measuring_s=$((SECONDS - T_START))" >>"$OUTDIR/env.txt"
summarize >"$OUTDIR/summary.md.tmp" && mv "$OUTDIR/summary.md.tmp" "$OUTDIR/summary.md"
cat "$OUTDIR/summary.md"
log "done in $((SECONDS - T_START)) s: $OUTDIR/summary.md"
