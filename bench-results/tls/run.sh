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
#   LOAD_CORE PORT_TLS PORT_PLAIN BACKEND_PORT START_LOAD_MAX START_QUIET_TIMEOUT; the suite's
#   (defaults in ../suite/lib/measure.sh, measure_knobs): QUIET_* NOISE_MAX_PCT MAX_ATTEMPTS
#   MAX_RUNTIME BUILD BUILD_TIMEOUT HALB_BIN LOADTEST_BIN OUTDIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SUITE=$REPO/bench-results/suite
# the suite's measuring machinery: quiet gate, measure_once (record.py), build, nginx, ...
# (it sources ../l4/lib/common.sh: PID registry + EXIT trap (kill by PID), watchdog,
# wait_quiet, CPU accounting, require_tools)
# shellcheck source=../suite/lib/measure.sh
source "$SUITE/lib/measure.sh"
# shellcheck source=../suite/lib/proxies.sh
source "$SUITE/lib/proxies.sh"
# shellcheck source=lib/tls.sh
source "$HERE/lib/tls.sh"
BUILDERS="cargo rustc"   # a run is flagged while either runs

measure_knobs 400   # QUICK=1: 1 round of 3 s runs, short quiet waits, watchdog 400 s
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
START_QUIET_TIMEOUT=${START_QUIET_TIMEOUT:-$((QUICK ? 30 : 900))} # ... and no cargo/rustc, waiting at most this (s)

BE=127.0.0.1:$BACKEND_PORT

# ---------------------------------------------------------------- preflight
require_tools haproxy nginx openssl curl taskset ss
measure_require_cores
case $VERIFY in insecure|cacert) ;; *) die "VERIFY must be insecure or cacert" ;; esac
for v in $VARIANTS; do case $v in haproxy|halb) ;; *) die "unknown variant $v (haproxy, halb)" ;; esac; done
measure_check_args PORT_TLS PORT_PLAIN BACKEND_PORT

measure_outdir

# ---------------------------------------------------------------- build (as the suite does)
measure_build

# ---------------------------------------------------------------- quiet start
# Nobody building (cargo/rustc) and the 1-minute load below START_LOAD_MAX, bounded.
load1() { cut -d' ' -f1 /proc/loadavg; }
START_WAITED=0 START_QUIET=0
while ((START_WAITED < START_QUIET_TIMEOUT)); do
  if (($(builders_count) == 0)) && awk -v l="$(load1)" -v m="$START_LOAD_MAX" 'BEGIN{exit !(l < m)}'; then
    START_QUIET=1; break
  fi
  ((START_WAITED % 60 == 0)) && log "waiting for a quiet machine: load $(load1), cargo/rustc $(builders_count) (max ${START_QUIET_TIMEOUT}s)"
  sleep 5; START_WAITED=$((START_WAITED + 5))
done
((START_QUIET)) || log "machine not quiet after ${START_QUIET_TIMEOUT}s (load $(load1), cargo/rustc $(builders_count)): going on, runs are flagged"

# ---------------------------------------------------------------- setup
measure_setup tls
tls_make_certs "$RUNDIR/certs" "$SNI" || die "certificate generation with openssl failed"
CAFILE=$RUNDIR/certs/ca-all.pem
chmod -R a+rX "$RUNDIR/www"
for k in ecdsa rsa; do
  { echo "== leaf-$k.pem (leaf certificate + PKCS#8 key; the chain sent is the leaf alone)"
    openssl x509 -in "$RUNDIR/certs/leaf-$k.crt" -noout -subject -issuer -ext subjectAltName
    openssl x509 -in "$RUNDIR/certs/leaf-$k.crt" -noout -text | grep -E "Public Key Algorithm|Public-Key|ASN1 OID|Signature Algorithm" | sort -u
  } >>"$OUTDIR/raw/certs.txt"
done

measure_backend

env_cpu() {
  echo "cpu_flags_crypto=$(grep -m1 -o -w -E 'aes|pclmulqdq|avx2|avx512f|avx512ifma|sha_ni|vaes|vpclmulqdq|adx|bmi2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
}
env_tools() {
  echo "pinning: proxy -> core $PROXY_CORE (alone); nginx worker + halb-loadtest + this script -> core $LOAD_CORE"
  echo "haproxy: $(haproxy -v | sed -n 1p); $(haproxy -vv 2>/dev/null | grep -E '^(Built with|Running on) OpenSSL' | tr '\n' ';')"
  echo "openssl: $(openssl version)"
  echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "halb: $("$HALB_BIN" --version 2>&1 | head -1) path=$HALB_BIN sha256=$(sha256sum "$HALB_BIN" 2>/dev/null | cut -c1-16)"
  echo "halb-loadtest: $("$LOADTEST_BIN" --version 2>&1 | head -1) path=$LOADTEST_BIN sha256=$(sha256sum "$LOADTEST_BIN" 2>/dev/null | cut -c1-16)"
}
env_knobs() {
  echo "knobs: QUICK=$QUICK VARIANTS='$VARIANTS' WORKLOADS='$WORKLOADS' REPEATS=$REPEATS DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS=$CONNS RESUME_CONNS=$RESUME_CONNS VERIFY=$VERIFY"
  echo "quiet_start=$START_QUIET waited_s=$START_WAITED (load1 < $START_LOAD_MAX and no cargo/rustc)"
}
measure_env_txt
cp "$RUNDIR/nginx/nginx.conf" "$OUTDIR/raw/nginx.conf"
{
  echo "# $0 (QUICK=$QUICK), $(date -u -Is)"
  echo "# certificates: openssl genpkey/req/x509 into a temporary directory (lib/tls.sh tls_make_certs); raw/certs.txt"
  echo "# \$RUNDIR: a temporary directory (certificates, proxy configurations, nginx), deleted on exit"
  echo "taskset -c $LOAD_CORE nginx -p \$RUNDIR/nginx -c \$RUNDIR/nginx/nginx.conf   # raw/nginx.conf"
} >"$OUTDIR/commands.txt"

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

# run_workload WORKLOAD VARIANT ROUND PXPID
run_workload() {
  local wl=$1 v=$2 round=$3 px=$4 args
  read -r -a args <<<"$(load_args "$wl")"
  local -a verify=(--insecure); [[ $VERIFY == cacert ]] && verify=(--cacert "$CAFILE")
  measure_loadtest "$wl" "$v" "$round" "$px" "https://127.0.0.1:$PORT_TLS/ok" \
    taskset -c "$LOAD_CORE" "$LOADTEST_BIN" "${args[@]}" "${verify[@]}" --sni "$SNI" --expect-body-size 3
}

# check_proxy : answers /ok over TLS (certificate verified), keep-alive and close
check_proxy() {
  local -a c=(curl -s --max-time 5 --cacert "$CAFILE" --resolve "$SNI:$PORT_TLS:127.0.0.1")
  [[ $("${c[@]}" "https://$SNI:$PORT_TLS/ok") == ok ]] || return 1
  [[ $("${c[@]}" -H "Connection: close" -o /dev/null -w '%{http_code}' "https://$SNI:$PORT_TLS/ok") == 200 ]]
}

declare -A NEGOTIATED=()
# run_variant VARIANT CERT ROUND WORKLOADS...
run_variant() {
  local v=$1 cert=$2 round=$3; shift 3
  local rd=$RUNDIR/$v-$cert px wl ver
  [[ -n ${BROKEN[$v-$cert]:-} ]] && return 0
  rm -rf "$rd"
  if ! tls_proxy_start "$v" "127.0.0.1:$PORT_TLS" "127.0.0.1:$PORT_PLAIN" "$BE" "$RUNDIR/certs/leaf-$cert.pem" "$rd" "$PROXY_CORE" 2>"$RUNDIR/start.err" || [[ -z $PROXY_PID ]]; then
    BROKEN[$v-$cert]="failed to start: $(head -c 300 "$RUNDIR/start.err" | tr '\n' ' ')"; log "$v ($cert): ${BROKEN[$v-$cert]}"; return 0
  fi
  px=$PROXY_PID; register_pid "$px"
  note_cmd "$(hide_rundir "$PROXY_CMD")   # raw/$v-$cert.$([[ $v == halb ]] && echo toml || echo cfg)"
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
  measure_proxy_stop "$px" "$rd" "$v" "$cert" "$round"
}

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
    run_rotated "$round" "$cert" "${wls[@]}"
  done
done

measure_finish
