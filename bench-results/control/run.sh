#!/usr/bin/env bash
# Control-thread benchmark: what health checking 1,000 servers at inter = 1s costs.
#
#   issue requirement: "Health checking 1,000 servers at inter = 1s costs under 5 % of the
#   control core, and shards show no measurable change in CPU per request while it runs."
#
# Placement (2-core machine), everything on 127.0.0.0/8 (and, for the *-remote variants,
# on a veth pair into a network namespace this script creates):
#   core CONTROL_CORE (0): halb's control thread (the main thread, TID == PID; control_core = 0),
#                          nginx (1 worker), wrk, this script
#   core SHARD_CORE (1):   halb's only shard (shards = 1), alone; for the *-remote variants
#                          also the "remote machine" (the farm's nginx and its TCP receive
#                          processing), idle windows only
#
# halb variants (one fresh process per window pair), same configuration except the farm:
#   nochecks  frontend fe -> backend app (1 nginx server, not checked) + backend farm of
#             1,000 servers without `check`
#   http      the same, farm servers `check = true`, backend check
#             { type = "http", path = "/health", inter = "1s", rise = 2, fall = 3, timeout = "1s" }
#   tcp       the same with type = "tcp"
#   http-remote, tcp-remote
#             the same checks against a farm on the other side of a veth pair: network
#             namespace NETNS (created here, deleted on exit), halb end FARM_NET.1/24 in this
#             namespace, farm end FARM_NET.2/24 + FARM_ADDRS more addresses (FARM_NET.101 ..)
#             inside it; a second nginx (1 worker) inside it pinned to FARM_CORE (= SHARD_CORE)
#             listens on the 1,000 (address, port) pairs; RPS steers the receive processing of
#             the farm's veth end to FARM_CORE and of halb's end to CONTROL_CORE. The server's
#             half of every TCP exchange (SYN/accept, request, close) then runs off the
#             control core, as with real backends on other machines. Idle windows only.
#   extchecks halb as nochecks while HAProxy (core 0) checks the loopback farm over HTTP
# Reference (REFERENCE=1): HAProxy 2.x, nbthread 1 pinned to CONTROL_CORE, the same farm
#   checked the same way (`option httpchk GET /health` / plain tcp, inter 1s rise 2 fall 3,
#   timeout check 1s), idle windows only: haproxy-http, haproxy-tcp (loopback farm) and,
#   when a *-remote variant is in VARIANTS, haproxy-http-remote, haproxy-tcp-remote.
#
# Per halb start:
#   1. idle window (IDLE_SECS, no traffic): CPU of the control (main) thread = delta of
#      utime+stime of /proc/PID/task/PID/stat / CLK_TCK / wall -> % of one core; also the
#      other threads, schedstat ns (cross-check), nginx CPU, and nginx stub_status
#      `accepts` delta = check connections made per second (checks actually done); the busy
#      time of the control core and of the shard/farm core as a whole (/proc/stat: wall minus
#      idle+iowait, which NO_HZ kernels account exactly; irq and softirq included, whoever
#      they run for) and their NET_RX softirq counts (/proc/softirqs).
#   2. load windows (LOADS), wrk -t1 -c32 -dDURATION (after a 1 s warm-up), pinned to core
#      0, against the frontend: utime+stime delta of the halb-shard-* threads / requests
#      wrk counted -> shard CPU µs per request (schedstat ns as cross-check); the
#      frontend's request counter (stats JSON) before/after as a check that no one else
#      sent traffic.
#        paced: each connection waits PACE_MS (1 ms) after every response (lib/paced.lua),
#               so the offered load is the same with and without checks (core 0 has room)
#        max:   closed loop; core 0 (wrk + nginx + the control thread) is the bottleneck,
#               so checks lower req/s, and per-request CPU moves with the load level
#      (*-remote variants: the idle window only.)
#   3. farm state (stats JSON): servers UP, check_failures, down transitions, last checks.
#   4. (PROFILE=1, the first PROFILE_REPS repetitions, variants that check) after the idle
#      window, outside it: `perf record -g -t TID` of the checking thread for PROFILE_SECS,
#      summarized into buckets by lib/perf_buckets.py (profiles.jsonl, raw/perf/*.txt).
# Variant order rotates per repetition (nochecks, http, tcp / http, tcp, nochecks / ...):
# every checks window has a nochecks window next to it. Medians over REPEATS, ratios
# per repetition (checks / nochecks of the same repetition), with their spread.
#
# Output: OUTDIR (default bench-results/control/<UTC date>-<time>/): results.json, summary.md,
#         windows.jsonl (one line per window), states.jsonl, env.txt, commands.txt, run.log,
#         raw/ (configs, wrk outputs, thread tables, halb/nginx logs)
#
# Usage:  bench-results/control/run.sh            # ~35 min (+ waiting for load < 1.0); root for *-remote
#         QUICK=1 bench-results/control/run.sh    # ~2 min smoke run: 1 repetition, 5 s windows
# Env knobs (defaults below): REPEATS IDLE_SECS DURATION CONNS VARIANTS LOADS PACE_MS REFERENCE REF_REPEATS
#   PROFILE PROFILE_SECS PROFILE_REPS
#   CONTROL_CORE SHARD_CORE FARM_CORE FE_PORT APP_PORT STATS_PORT FARM_BASE_PORT FARM_ADDRS FARM_PORTS
#   FARM_NET (a /24 prefix, "10.201.0") NETNS
#   LOAD_MAX LOAD_WAIT QUIET_* BUILD HALB_BIN OUTDIR MAX_RUNTIME
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# PID registry + EXIT trap (kill by PID), watchdog, CPU accounting helpers
# shellcheck source=../l4/lib/common.sh
source "$REPO/bench-results/l4/lib/common.sh"
source "$HERE/lib/configs.sh"
set -E
trap '[[ $BASHPID == "$$" ]] && log "error (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

QUICK=${QUICK:-0}
if ((QUICK)); then
  : "${REPEATS:=1}" "${IDLE_SECS:=5}" "${DURATION:=5}" "${SETTLE:=2}" "${LOAD_WAIT:=0}"
  : "${QUIET_TIMEOUT:=5}" "${QUIET_SECS:=1}" "${REF_REPEATS:=1}" "${MAX_RUNTIME:=600}"
fi
REPEATS=${REPEATS:-5} IDLE_SECS=${IDLE_SECS:-20} DURATION=${DURATION:-10} CONNS=${CONNS:-32} THREADS=${THREADS:-1}
WARMUP=${WARMUP:-1} SETTLE=${SETTLE:-3}
VARIANTS=${VARIANTS:-"nochecks http tcp extchecks http-remote tcp-remote"}
LOADS=${LOADS:-"paced max"} PACE_MS=${PACE_MS:-1}
REFERENCE=${REFERENCE:-1} REF_REPEATS=${REF_REPEATS:-$REPEATS}
CONTROL_CORE=${CONTROL_CORE:-0} SHARD_CORE=${SHARD_CORE:-1} FARM_CORE=${FARM_CORE:-$SHARD_CORE}
FE_PORT=${FE_PORT:-28580} APP_PORT=${APP_PORT:-28581} STATS_PORT=${STATS_PORT:-28584}
FARM_BASE_PORT=${FARM_BASE_PORT:-28600} FARM_ADDRS=${FARM_ADDRS:-50} FARM_PORTS=${FARM_PORTS:-20}
FARM_NET=${FARM_NET:-10.201.0} FARM_REMOTE_FIRST=101   # remote farm: FARM_NET.101 .. FARM_NET.(100+FARM_ADDRS)
NETNS=${NETNS:-halb-bench-farm-$$}                     # network namespace of the remote farm
VETH_HALB=hbc$$h VETH_FARM=hbc$$f                      # veth ends (halb side / farm side)
LOAD_MAX=${LOAD_MAX:-1.0}         # wait for the 1-min load average to fall below this ...
LOAD_WAIT=${LOAD_WAIT:-1200}      # ... for at most this many seconds (0: do not wait)
QUIET_MAX_PCT=${QUIET_MAX_PCT:-10} QUIET_SECS=${QUIET_SECS:-2} QUIET_TIMEOUT=${QUIET_TIMEOUT:-20}
NOISE_MAX_PCT=${NOISE_MAX_PCT:-10} # a window is "noisy" if other processes used more of the machine
PROFILE=${PROFILE:-1} PROFILE_SECS=${PROFILE_SECS:-8} PROFILE_REPS=${PROFILE_REPS:-1}  # perf profile of the checking thread (not measured)
MAX_RUNTIME=${MAX_RUNTIME:-3600}  # watchdog for the measuring part (build and load wait excluded)
BUILD=${BUILD:-auto}              # auto: build if the binary is missing or older than the sources
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}
HALB_BIN=${HALB_BIN:-$REPO/target/release/halb}
OUTDIR=${OUTDIR:-$HERE/$(date -u +%Y-%m-%d-%H%M%S)}

HZ=$CLK_TCK NCPU=$(grep -c "^cpu[0-9]" /proc/stat)
NFARM=$((FARM_ADDRS * FARM_PORTS))
APP=127.0.0.1:$APP_PORT FE=127.0.0.1:$FE_PORT STATS=127.0.0.1:$STATS_PORT

# ---------------------------------------------------------------- preflight
missing=()
for t in nginx wrk curl taskset ss; do command -v "$t" >/dev/null || missing+=("$t"); done
if ! command -v haproxy >/dev/null; then
  log "haproxy not found: the HAProxy reference and the extchecks variant are skipped (apt-get install -y haproxy to get them)"
  REFERENCE=0 VARIANTS=$(echo " $VARIANTS " | sed 's/ extchecks / /g; s/^ *//; s/ *$//')
fi
REMOTE=0
[[ " $VARIANTS " == *"-remote "* ]] && REMOTE=1
if ((REMOTE)) && { ((EUID != 0)) || ! command -v ip >/dev/null; }; then
  log "the *-remote variants need root and ip(8) (network namespace, veth pair): skipped"
  REMOTE=0 VARIANTS=$(echo " $VARIANTS " | sed 's/ [a-z]*-remote / /g; s/ [a-z]*-remote / /g; s/^ *//; s/ *$//')
fi
if ((${#missing[@]})); then
  pkgs=""
  for t in "${missing[@]}"; do case $t in taskset) pkgs+=" util-linux" ;; ss) pkgs+=" iproute2" ;; *) pkgs+=" $t" ;; esac; done
  echo "missing tools: ${missing[*]}" >&2
  echo "this script installs nothing; install them with:  apt-get install -y$pkgs" >&2
  exit 2
fi
[[ -x /usr/bin/python3 ]] || die "/usr/bin/python3 is needed"
if ((PROFILE)) && ! command -v perf >/dev/null; then log "perf not found: no profiles (PROFILE=0)"; PROFILE=0; fi
((NCPU >= 2)) || die "needs at least 2 cores (control core $CONTROL_CORE, shard core $SHARD_CORE)"
((CONTROL_CORE != SHARD_CORE)) || die "CONTROL_CORE and SHARD_CORE must differ"
for v in $VARIANTS; do case $v in nochecks|http|tcp|extchecks|http-remote|tcp-remote) ;; *) die "unknown variant $v" ;; esac; done
for m in $LOADS; do case $m in max|paced) ;; *) die "unknown load mode $m" ;; esac; done
[[ " $VARIANTS " == *" nochecks "* ]] || log "warning: no nochecks variant: no shard CPU ratio"
((FARM_ADDRS >= 1 && FARM_ADDRS <= 254 && FARM_PORTS >= 1)) || die "FARM_ADDRS must be 1..254, FARM_PORTS >= 1"
if ((REMOTE)); then
  ((FARM_ADDRS <= 154)) || die "the remote farm has room for 154 addresses (FARM_NET.101-254)"
  [[ $FARM_NET =~ ^(10\.[0-9]+\.[0-9]+|192\.168\.[0-9]+|172\.(1[6-9]|2[0-9]|3[01])\.[0-9]+)$ ]] || die "FARM_NET must be a private /24 prefix (e.g. 10.201.0)"
  ((FARM_CORE != CONTROL_CORE)) || die "FARM_CORE must differ from CONTROL_CORE"
  # nothing on this machine may already route, own or use the farm's /24 or the names
  [[ -z $(ip -o addr show to "$FARM_NET.0/24") && -z $(ip route show to match "$FARM_NET.1" | grep -v '^default') ]] ||
    die "$FARM_NET.0/24 is already in use on this machine (ip addr / ip route): set FARM_NET"
  ! ip netns list | grep -qw "$NETNS" || die "network namespace $NETNS exists already"
  ! ip link show "$VETH_HALB" >/dev/null 2>&1 || die "interface $VETH_HALB exists already"
fi
ports_in_use=""
for p in "$FE_PORT" "$APP_PORT" "$STATS_PORT" $(seq "$FARM_BASE_PORT" $((FARM_BASE_PORT + FARM_PORTS - 1))); do
  if ss -Hltn "sport = :$p" | grep -q .; then ports_in_use+=" $p"; fi
done
[[ -z $ports_in_use ]] || die "ports in use:$ports_in_use (set FE_PORT/APP_PORT/STATS_PORT/FARM_BASE_PORT)"
ulimit -n 20000 2>/dev/null || true   # nginx: 1,000 listeners + connections

mkdir -p "$OUTDIR/raw/wrk" "$OUTDIR/raw/threads"
OUTDIR=$(cd "$OUTDIR" && pwd)
log "results -> $OUTDIR"
exec 3>>"$OUTDIR/run.log"
on_exit "[[ -s '$OUTDIR/summary.md' ]] || { echo '**INCOMPLETE RUN** (stopped early: see run.log)'; echo; /usr/bin/python3 '$HERE/lib/summarize.py' '$OUTDIR'; } >'$OUTDIR/summary.md' 2>&1"
echo "# $(date -Is) $0 QUICK=$QUICK VARIANTS='$VARIANTS' REPEATS=$REPEATS IDLE_SECS=$IDLE_SECS DURATION=$DURATION" >&3

# ---------------------------------------------------------------- halb build + config check
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
[[ -x $HALB_BIN ]] || die "no halb binary at $HALB_BIN"
mkdir -p "$OUTDIR/raw/configs"
for v in $VARIANTS; do
  halb_config "$v" /tmp/halb-bench-control-check >"$OUTDIR/raw/configs/halb-$v.toml"
  "$HALB_BIN" check -c "$OUTDIR/raw/configs/halb-$v.toml" >"$OUTDIR/raw/configs/halb-$v.check.txt" 2>&1 ||
    die "halb check rejects the $v configuration: $(head -c 600 "$OUTDIR/raw/configs/halb-$v.check.txt")"
done

# ---------------------------------------------------------------- wait for a quiet machine
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg) LOAD_WAITED=0 LOAD_OK=1
load_high() { awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$LOAD_MAX" 'BEGIN{exit !(l >= m)}'; }
if ((LOAD_WAIT > 0)) && load_high; then
  log "load average $(cut -d' ' -f1-3 /proc/loadavg) >= $LOAD_MAX: waiting (up to ${LOAD_WAIT}s) for it to fall"
  t0=$SECONDS
  while load_high && ((SECONDS - t0 < LOAD_WAIT)); do sleep 10; done
  LOAD_WAITED=$((SECONDS - t0))
  if load_high; then LOAD_OK=0; log "load still $(cut -d' ' -f1 /proc/loadavg) after ${LOAD_WAITED}s: measuring anyway (flagged)"
  else log "load $(cut -d' ' -f1 /proc/loadavg) after ${LOAD_WAITED}s"; fi
fi
load_high && LOAD_OK=0
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- setup
start_watchdog "$MAX_RUNTIME"
T_START=$SECONDS
# everything this script starts runs on CONTROL_CORE unless pinned otherwise (halb gets
# both cores with taskset and places its threads itself)
taskset -pc "$CONTROL_CORE" $$ >/dev/null
RUNDIR=$(mktemp -d /tmp/halb-bench-control.XXXXXX)
on_exit "rm -rf '$RUNDIR'"
mkdir -p "$RUNDIR/nginx"
nginx_config "$RUNDIR/nginx" "$CONTROL_CORE" >"$RUNDIR/nginx/nginx.conf"
nginx -t -q -p "$RUNDIR/nginx" -c "$RUNDIR/nginx/nginx.conf" -e stderr || die "nginx -t failed"
taskset -c "$CONTROL_CORE" nginx -p "$RUNDIR/nginx" -c "$RUNDIR/nginx/nginx.conf" -e "$RUNDIR/nginx/nginx-error.log" \
  >"$RUNDIR/nginx/nginx.out" 2>&1 &
NGX=$!; register_pid "$NGX"
wait_port 127.0.0.1 "$APP_PORT" 10 || die "nginx did not start: $(tail -c 400 "$RUNDIR/nginx/nginx-error.log" 2>/dev/null)"
sleep 0.3; NGX_WORKERS=$(children "$NGX")
[[ $(curl -sf --max-time 5 "http://$APP/") == hello ]] || die "nginx / probe failed"
[[ $(curl -sf --max-time 5 "http://127.0.1.$FARM_ADDRS:$((FARM_BASE_PORT + FARM_PORTS - 1))/health") == ok ]] || die "nginx farm /health probe failed"
cp "$RUNDIR/nginx/nginx.conf" "$OUTDIR/raw/configs/nginx.conf"
# shellcheck disable=SC2086
nginx_ticks() { proc_ticks "$NGX" $NGX_WORKERS ${RNGX:-} ${RNGX_WORKERS:-}; }
# nginx_accepts [loopback|remote] -> the `accepts` counter of the loopback or the remote farm's nginx
nginx_accepts() {
  local url=http://$APP/nginx_status
  [[ ${1:-loopback} == remote ]] && url=http://$FARM_NET.2:$APP_PORT/nginx_status
  curl -s --max-time 3 "$url" | awk 'NR==3 {print $1}'
}
[[ -n $(nginx_accepts) ]] || die "nginx stub_status probe failed"

# ---------------------------------------------------------------- remote farm (*-remote variants)
# A network namespace NETNS with the farm end of a veth pair; the halb end stays in this
# namespace. Addresses: halb end FARM_NET.1/24, farm end FARM_NET.2/24 plus the FARM_ADDRS farm
# addresses FARM_NET.101.. (/24 secondaries). A second nginx inside the namespace, pinned to
# FARM_CORE, listens on the 1,000 farm (address, port) pairs. RPS: packets received by the
# farm end are processed on FARM_CORE, packets received by the halb end on CONTROL_CORE; a
# veth transmit hands the packet to the receive path of its peer (netif_rx), which RPS sends
# to the core in the peer's rps_cpus (without RPS it would run on the sending core).
RNGX="" RNGX_WORKERS=""
cpumask() { printf '%x' $((1 << $1)); }
nsrun() { ip netns exec "$NETNS" "$@"; }
setup_remote_farm() {
  local a rd=$RUNDIR/nginx-remote
  log "remote farm: namespace $NETNS, veth $VETH_HALB ($FARM_NET.1) <-> $VETH_FARM ($FARM_NET.2, $FARM_NET.$FARM_REMOTE_FIRST-$FARM_NET.$((FARM_REMOTE_FIRST + FARM_ADDRS - 1))), nginx on core $FARM_CORE"
  ip netns add "$NETNS" || die "ip netns add $NETNS failed"
  on_exit "ip netns del '$NETNS' 2>/dev/null || true"
  # registered after the namespace's hook, so it runs before it (hooks run in reverse)
  on_exit "ip link del '$VETH_HALB' 2>/dev/null || true"
  ip link add "$VETH_HALB" type veth peer name "$VETH_FARM" netns "$NETNS" || die "ip link add veth failed"
  ip addr add "$FARM_NET.1/24" dev "$VETH_HALB"
  ip link set "$VETH_HALB" up
  nsrun ip link set lo up
  nsrun ip addr add "$FARM_NET.2/24" dev "$VETH_FARM"
  for ((a = 0; a < FARM_ADDRS; a++)); do nsrun ip addr add "$FARM_NET.$((FARM_REMOTE_FIRST + a))/24" dev "$VETH_FARM"; done
  nsrun ip link set "$VETH_FARM" up
  echo "$(cpumask "$CONTROL_CORE")" >"/sys/class/net/$VETH_HALB/queues/rx-0/rps_cpus"
  nsrun sh -c "echo $(cpumask "$FARM_CORE") >/sys/class/net/$VETH_FARM/queues/rx-0/rps_cpus"
  # the farm's addresses must be reachable through the veth only
  ip route get "$FARM_NET.$FARM_REMOTE_FIRST" | grep -qw "dev $VETH_HALB" || die "$FARM_NET.$FARM_REMOTE_FIRST is not routed to $VETH_HALB: $(ip route get "$FARM_NET.$FARM_REMOTE_FIRST")"
  mkdir -p "$rd"
  nginx_config "$rd" "$FARM_CORE" remote >"$rd/nginx.conf"
  nsrun nginx -t -q -p "$rd" -c "$rd/nginx.conf" -e stderr || die "nginx -t failed (remote farm)"
  # ip netns exec and taskset exec: $! is the nginx master
  ip netns exec "$NETNS" taskset -c "$FARM_CORE" nginx -p "$rd" -c "$rd/nginx.conf" -e "$rd/nginx-error.log" >"$rd/nginx.out" 2>&1 &
  RNGX=$!; register_pid "$RNGX"
  wait_port "$FARM_NET.2" "$APP_PORT" 10 || die "remote nginx did not start: $(tail -c 400 "$rd/nginx-error.log" 2>/dev/null)"
  sleep 0.3; RNGX_WORKERS=$(children "$RNGX")
  [[ $(curl -sf --max-time 5 "http://$FARM_NET.$((FARM_REMOTE_FIRST + FARM_ADDRS - 1)):$((FARM_BASE_PORT + FARM_PORTS - 1))/health") == ok ]] || die "remote farm /health probe failed"
  [[ -n $(nginx_accepts remote) ]] || die "remote nginx stub_status probe failed"
  cp "$rd/nginx.conf" "$OUTDIR/raw/configs/nginx-remote.conf"
  {
    echo "# remote farm (*-remote variants): network namespace, veth pair, RPS, nginx inside (raw/configs/nginx-remote.conf)"
    echo "ip netns add $NETNS"
    echo "ip link add $VETH_HALB type veth peer name $VETH_FARM netns $NETNS"
    echo "ip addr add $FARM_NET.1/24 dev $VETH_HALB; ip link set $VETH_HALB up"
    echo "ip netns exec $NETNS ip link set lo up"
    echo "ip netns exec $NETNS ip addr add $FARM_NET.2/24 dev $VETH_FARM"
    echo "ip netns exec $NETNS ip addr add $FARM_NET.N/24 dev $VETH_FARM   # N = $FARM_REMOTE_FIRST .. $((FARM_REMOTE_FIRST + FARM_ADDRS - 1))"
    echo "ip netns exec $NETNS ip link set $VETH_FARM up"
    echo "echo $(cpumask "$CONTROL_CORE") > /sys/class/net/$VETH_HALB/queues/rx-0/rps_cpus   # halb end: receive processing on core $CONTROL_CORE"
    echo "ip netns exec $NETNS sh -c 'echo $(cpumask "$FARM_CORE") > /sys/class/net/$VETH_FARM/queues/rx-0/rps_cpus'   # farm end: on core $FARM_CORE"
    echo "ip netns exec $NETNS taskset -c $FARM_CORE nginx -p RUNDIR/nginx-remote -c RUNDIR/nginx-remote/nginx.conf"
  } >>"$OUTDIR/commands.txt"
  REMOTE_DESC="namespace $NETNS; veth $VETH_HALB $FARM_NET.1/24 (rps_cpus=$(cat "/sys/class/net/$VETH_HALB/queues/rx-0/rps_cpus")) <-> $VETH_FARM $FARM_NET.2/24 + $FARM_NET.$FARM_REMOTE_FIRST-$((FARM_REMOTE_FIRST + FARM_ADDRS - 1)) (rps_cpus=$(nsrun cat "/sys/class/net/$VETH_FARM/queues/rx-0/rps_cpus")); mtu $(cat "/sys/class/net/$VETH_HALB/mtu")"
  REMOTE_DESC+="; nginx master=$RNGX workers=$RNGX_WORKERS affinity=$(for p in $RNGX_WORKERS; do taskset -pc "$p" | sed 's/.*: //'; done)"
}

{
  echo "date_utc=$(date -u -Is)"
  echo "cpu_model=$(lscpu | awk -F': +' '/^Model name/{print $2; exit}') ncpu=$NCPU $(lscpu | awk -F': +' '/^Hypervisor vendor/{print "hypervisor=" $2}')"
  echo "kernel=$(uname -sr) $(uname -m)"
  echo "pinning: halb control thread -> core $CONTROL_CORE (control_core = $CONTROL_CORE), shard -> core $SHARD_CORE (shards = 1); nginx worker + wrk + this script -> core $CONTROL_CORE$( ((REMOTE)) && echo "; remote farm (*-remote): its nginx and the farm end's receive processing -> core $FARM_CORE, the halb end's receive processing -> core $CONTROL_CORE")"
  echo "nginx master=$NGX workers=$NGX_WORKERS affinity=$(for p in $NGX_WORKERS; do taskset -pc "$p" | sed 's/.*: //'; done)"
  echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "wrk: $({ wrk -v 2>&1 || true; } | sed -n 1p)"
  command -v haproxy >/dev/null && echo "haproxy: $(haproxy -v | sed -n 1p)"
  echo "halb_bin=$HALB_BIN mtime=$(date -u -r "$HALB_BIN" -Is) sha256=$(sha256sum "$HALB_BIN" | cut -c1-16)"
  echo "halb_version=$("$HALB_BIN" --version 2>&1 | head -1)"
  echo "git_head=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo none) ($(git -C "$REPO" log -1 --format=%s 2>/dev/null | cut -c1-80)) dirty_files=$(git -C "$REPO" status --porcelain 2>/dev/null | wc -l)"
  echo "farm: $NFARM servers = $FARM_ADDRS addresses (127.0.1.1-127.0.1.$FARM_ADDRS) x $FARM_PORTS ports ($FARM_BASE_PORT-$((FARM_BASE_PORT + FARM_PORTS - 1))), nginx listens on each$( ((REMOTE)) && echo "; remote farm: $FARM_NET.$FARM_REMOTE_FIRST-$FARM_NET.$((FARM_REMOTE_FIRST + FARM_ADDRS - 1)) x the same ports, in network namespace $NETNS")"
  echo "ulimit_n=$(ulimit -n) clk_tck=$HZ"
  echo "knobs: QUICK=$QUICK VARIANTS='$VARIANTS' REPEATS=$REPEATS IDLE_SECS=${IDLE_SECS}s DURATION=${DURATION}s CONNS=$CONNS THREADS=$THREADS WARMUP=${WARMUP}s SETTLE=${SETTLE}s LOADS='$LOADS' PACE_MS=$PACE_MS REFERENCE=$REFERENCE REF_REPEATS=$REF_REPEATS QUIET<${QUIET_MAX_PCT}%/${QUIET_SECS}s timeout=${QUIET_TIMEOUT}s"
  echo "load_before_wait=$LOAD_BEFORE"
  echo "load_wait_s=$LOAD_WAITED"
  echo "load_max=$LOAD_MAX"
  echo "load_ok=$LOAD_OK"
  echo "load_start=$LOAD_START"
  echo "rustc_at_start=$(rustc_count)"
} >"$OUTDIR/env.txt"
{
  echo "# nginx (raw/configs/nginx.conf)"
  echo "taskset -c $CONTROL_CORE nginx -p RUNDIR/nginx -c RUNDIR/nginx/nginx.conf"
} >"$OUTDIR/commands.txt"
REMOTE_DESC=""
if ((REMOTE)); then
  setup_remote_farm
  echo "remote_farm: $REMOTE_DESC" >>"$OUTDIR/env.txt"
fi
declare -A CMD_SEEN=()
note_cmd() { [[ -n ${CMD_SEEN[$1]:-} ]] && return 0; CMD_SEEN[$1]=1; echo "$1" >>"$OUTDIR/commands.txt"; }

# ---------------------------------------------------------------- helpers
# thread_table PID -> "tid comm allowed psr utime stime sched_ns voluntary_ctxt nonvoluntary_ctxt" per thread
thread_table() {
  local pid=$1 t
  for t in /proc/"$pid"/task/*; do
    [[ -r $t/stat ]] || continue
    printf '%s %s %s %s %s %s\n' "${t##*/}" "$(tr ' ' '_' <"$t"/comm 2>/dev/null)" \
      "$(awk '/^Cpus_allowed_list/{print $2}' "$t"/status 2>/dev/null)" \
      "$(sed 's/.*) //' "$t"/stat | awk '{print $37, $12, $13}')" \
      "$(awk '{print $1}' "$t"/schedstat 2>/dev/null)" \
      "$(awk '/^voluntary_ctxt_switches/{v=$2} /^nonvoluntary_ctxt_switches/{n=$2} END{print v+0, n+0}' "$t"/status 2>/dev/null)"
  done 2>/dev/null || true
}
# halb_cpu PID -> "main_ticks shard_ticks other_ticks main_ns shard_ns other_ns main_user_ticks
#                  shard_voluntary_ctxt shard_nonvoluntary_ctxt main_voluntary_ctxt main_nonvoluntary_ctxt"
#   main = the thread TID == PID (the control thread), shard = threads named halb-shard*
halb_cpu() {
  thread_table "$1" | awk -v pid="$1" '
    { ticks = $5 + $6; ns = $7
      if ($1 == pid) { mt += ticks; mn += ns; mu += $5; mv += $8; mi += $9 }
      else if ($2 ~ /^halb-shard/) { st += ticks; sn += ns; sv += $8; si += $9 }
      else { ot += ticks; on += ns } }
    END { printf "%d %d %d %.0f %.0f %.0f %d %d %d %d %d\n", mt, st, ot, mn, sn, on, mu, sv, si, mv, mi }'
}
# single-threaded reference (HAProxy): everything counts as "main"
proc_cpu() {
  printf '%s 0 0 %s 0 0 %s 0 0 %s\n' "$(proc_ticks "$1")" "$(proc_sched_ns "$1")" "$(awk '{print $14}' /proc/"$1"/stat 2>/dev/null || echo 0)" \
    "$(awk '/^voluntary_ctxt_switches/{v=$2} /^nonvoluntary_ctxt_switches/{n=$2} END{print v+0, n+0}' /proc/"$1"/status 2>/dev/null || echo 0 0)"
}

# quiet_gate OWN_PIDS... : wait (bounded) until processes other than ours and nginx use less
# than QUIET_MAX_PCT of the machine for QUIET_SECS seconds in a row. Sets Q_OK Q_WAIT Q_PCT.
quiet_gate() {
  local ok=0 t=0 a b oa ob
  Q_OK=0 Q_WAIT=0 Q_PCT=
  while ((t < QUIET_TIMEOUT)); do
    # shellcheck disable=SC2086
    a=$(total_busy); oa=$(($(proc_ticks "$@") + $(nginx_ticks))); sleep 1
    b=$(total_busy); ob=$(($(proc_ticks "$@") + $(nginx_ticks))); t=$((t + 1))
    Q_PCT=$(awk -v d="$((b - a - (ob - oa)))" -v hz="$HZ" -v n="$NCPU" 'BEGIN{if (d<0) d=0; printf "%.1f", 100*d/(hz*n)}')
    if awk -v p="$Q_PCT" -v m="$QUIET_MAX_PCT" 'BEGIN{exit !(p < m)}'; then
      ok=$((ok + 1)); ((ok >= QUIET_SECS)) && { Q_OK=1; break; }
    else ok=0; fi
  done
  Q_WAIT=$t
  ((Q_OK)) || log "not quiet after ${t}s (others ${Q_PCT}% of the machine): measuring anyway, window flagged"
}

# snap PID KIND(halb|proc) -> sets S_* (begin with prefix 0, end with prefix 1)
snap() {
  local p=$1 kind=$2 n=$3 cpu
  if [[ $kind == halb ]]; then cpu=$(halb_cpu "$p"); else cpu=$(proc_cpu "$p"); fi
  read -r "S_MT$n" "S_ST$n" "S_OT$n" "S_MN$n" "S_SN$n" "S_ON$n" "S_MU$n" "S_SV$n" "S_SI$n" "S_MV$n" "S_MI$n" <<<"$cpu"
  printf -v "S_PROC$n" '%s' "$(proc_ticks "$p")"
  printf -v "S_NG$n" '%s' "$(nginx_ticks)"
  printf -v "S_TOT$n" '%s' "$(total_busy)"
  printf -v "S_RC$n" '%s' "$(rustc_count)"
  printf -v "S_W$n" '%s' "$(date +%s.%N)"
}
# core_snap N -> K_A$N K_B$N (CONTROL_CORE, SHARD_CORE: "busy idle irq softirq" ticks from
# /proc/stat; busy = user+nice+system+irq+softirq+steal, idle = idle+iowait), K_N$N (NET_RX
# softirqs on the two cores), K_I$N (inter-processor interrupts received by the two cores:
# "CAL0 CAL1 RES0 RES1", function-call and rescheduling IPIs, /proc/interrupts), K_P$N (packets
# sent and received by halb's end of the remote farm's veth, "0 0" without it), K_W$N (time).
# Bash builtins only: no fork inside the window.
core_snap() {
  local n=$1
  local -a x
  while read -r -a x; do
    case ${x[0]} in
      "cpu$CONTROL_CORE") printf -v "K_A$n" '%s' "$((x[1] + x[2] + x[3] + x[6] + x[7] + x[8])) $((x[4] + x[5])) ${x[6]} ${x[7]}" ;;
      "cpu$SHARD_CORE") printf -v "K_B$n" '%s' "$((x[1] + x[2] + x[3] + x[6] + x[7] + x[8])) $((x[4] + x[5])) ${x[6]} ${x[7]}" ;;
    esac
  done </proc/stat
  while read -r -a x; do
    [[ ${x[0]} == NET_RX: ]] && printf -v "K_N$n" '%s' "${x[$((CONTROL_CORE + 1))]} ${x[$((SHARD_CORE + 1))]}"
  done </proc/softirqs
  local cal="0 0" res="0 0"
  while read -r -a x; do
    case ${x[0]} in
      CAL:) cal="${x[$((CONTROL_CORE + 1))]} ${x[$((SHARD_CORE + 1))]}" ;;
      RES:) res="${x[$((CONTROL_CORE + 1))]} ${x[$((SHARD_CORE + 1))]}" ;;
    esac
  done </proc/interrupts
  printf -v "K_I$n" '%s' "$cal $res"
  local tx=0 rx=0
  if [[ -r /sys/class/net/$VETH_HALB/statistics/tx_packets ]]; then
    read -r tx </sys/class/net/"$VETH_HALB"/statistics/tx_packets
    read -r rx </sys/class/net/"$VETH_HALB"/statistics/rx_packets
  fi
  printf -v "K_P$n" '%s' "$tx $rx"
  printf -v "K_W$n" '%s' "$EPOCHREALTIME"
}
# core_fields -> key=value arguments for record.py from two core_snap snapshots
core_fields() {
  local -a a0 a1 b0 b1 n0 n1 i0 i1 p0 p1
  read -r -a a0 <<<"$K_A0"; read -r -a a1 <<<"$K_A1"; read -r -a b0 <<<"$K_B0"; read -r -a b1 <<<"$K_B1"
  read -r -a n0 <<<"$K_N0"; read -r -a n1 <<<"$K_N1"; read -r -a i0 <<<"$K_I0"; read -r -a i1 <<<"$K_I1"
  read -r -a p0 <<<"$K_P0"; read -r -a p1 <<<"$K_P1"
  echo "core_wall_s=$(awk -v a="$K_W0" -v b="$K_W1" 'BEGIN{printf "%.4f", b-a}')" \
    "c0_busy_ticks=$((a1[0] - a0[0]))" "c0_idle_ticks=$((a1[1] - a0[1]))" "c0_irq_ticks=$((a1[2] - a0[2]))" "c0_softirq_ticks=$((a1[3] - a0[3]))" \
    "c1_busy_ticks=$((b1[0] - b0[0]))" "c1_idle_ticks=$((b1[1] - b0[1]))" "c1_irq_ticks=$((b1[2] - b0[2]))" "c1_softirq_ticks=$((b1[3] - b0[3]))" \
    "c0_netrx=$((n1[0] - n0[0]))" "c1_netrx=$((n1[1] - n0[1]))" \
    "c0_cal=$((i1[0] - i0[0]))" "c1_cal=$((i1[1] - i0[1]))" "c0_res=$((i1[2] - i0[2]))" "c1_res=$((i1[3] - i0[3]))" \
    "veth_tx=$((p1[0] - p0[0]))" "veth_rx=$((p1[1] - p0[1]))"
}
# window_fields -> key=value arguments for record.py from the two snapshots
window_fields() {
  echo "hz=$HZ" "ncpu=$NCPU" "noise_max_pct=$NOISE_MAX_PCT" \
    "wall_s=$(awk -v a="$S_W0" -v b="$S_W1" 'BEGIN{printf "%.4f", b-a}')" \
    "main_ticks=$((S_MT1 - S_MT0))" "main_user_ticks=$((S_MU1 - S_MU0))" "shard_vctx=$((S_SV1 - S_SV0))" "shard_ivctx=$((S_SI1 - S_SI0))" "main_vctx=$((S_MV1 - S_MV0))" "main_ivctx=$((S_MI1 - S_MI0))" "shard_ticks=$((S_ST1 - S_ST0))" "other_ticks=$((S_OT1 - S_OT0))" \
    "main_ns=$((S_MN1 - S_MN0))" "shard_ns=$((S_SN1 - S_SN0))" "other_ns=$((S_ON1 - S_ON0))" \
    "proc_ticks=$((S_PROC1 - S_PROC0))" "nginx_ticks=$((S_NG1 - S_NG0))" "total_busy_ticks=$((S_TOT1 - S_TOT0))" \
    "farm_servers=$NFARM" "rustc_before=$S_RC0" "rustc_after=$S_RC1" "load1=$(cut -d' ' -f1 /proc/loadavg)" \
    "quiet=$Q_OK" "quiet_wait_s=$Q_WAIT" "others_before_pct=$Q_PCT"
}

# idle_window VARIANT REP PID KIND : no traffic, IDLE_SECS
#   also the busy time of the control core and the shard (= remote farm) core as a whole
idle_window() {
  local v=$1 rep=$2 pid=$3 kind=$4 a0 a1 line where
  where=$(variant_where "$v")
  quiet_gate "$pid"
  a0=$(nginx_accepts "$where")
  snap "$pid" "$kind" 0
  core_snap 0
  sleep "$IDLE_SECS"
  core_snap 1
  snap "$pid" "$kind" 1
  a1=$(nginx_accepts "$where")
  # shellcheck disable=SC2046
  line=$(/usr/bin/python3 "$HERE/lib/record.py" "$OUTDIR" kind=idle variant="$v" rep="$rep" farm="$where" \
    $(window_fields) $(core_fields) nginx_accepts="$((a1 - a0))" t_start="$(date -u -d "@$S_W0" +%H:%M:%S)")
  log "$line"; echo "$line" >&3
}

# load_window VARIANT REP PID MODE : wrk against the frontend, DURATION
#   MODE max:   closed loop, as fast as core 0 (wrk + nginx + the control thread) allows
#   MODE paced: every connection waits PACE_MS after each response (lib/paced.lua): the
#               same offered load with and without checks, below core 0's capacity
load_window() {
  local v=$1 rep=$2 pid=$3 mode=$4 raw=$OUTDIR/raw/wrk/$1-$4-r$2.txt a0 a1 f0 f1 line ct
  local -a script=()
  [[ $mode == paced ]] && script=(-s "$HERE/lib/paced.lua")
  local -a cmd=(taskset -c "$CONTROL_CORE" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "${script[@]}" "http://$FE/")
  PACE_MS=$PACE_MS timeout $((WARMUP + 15)) taskset -c "$CONTROL_CORE" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "${script[@]}" "http://$FE/" \
    >"$RUNDIR/warm.txt" 2>&1 || log "warm-up failed ($v $mode): $(head -c 200 "$RUNDIR/warm.txt")"
  note_cmd "$([[ $mode == paced ]] && echo "PACE_MS=$PACE_MS ")${cmd[*]}   # load window ($mode), every halb variant"
  quiet_gate "$pid"
  f0=$(state_of_halb | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("fe_requests", ""))')
  a0=$(nginx_accepts)
  snap "$pid" halb 0
  TIMEFORMAT='%U %S'
  { time PACE_MS=$PACE_MS timeout $((DURATION + 30)) "${cmd[@]}" >"$raw" 2>&1; } 2>"$RUNDIR/time.txt" || true
  snap "$pid" halb 1
  a1=$(nginx_accepts)
  f1=$(state_of_halb | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("fe_requests", ""))')
  ct=$(awk '{printf "%.3f", $1+$2}' "$RUNDIR/time.txt")
  # shellcheck disable=SC2046
  line=$(/usr/bin/python3 "$HERE/lib/record.py" "$OUTDIR" kind=load mode="$mode" variant="$v" rep="$rep" \
    $(window_fields) nginx_accepts="$((a1 - a0))" client_cpu_s="$ct" wrk_file="$raw" conns="$CONNS" \
    fe_requests_delta="$((${f1:-0} - ${f0:-0}))" t_start="$(date -u -d "@$S_W0" +%H:%M:%S)")
  log "$line"; echo "$line" >&3
}

# profile_window VARIANT REP PID : perf profile of the checking thread (TID == PID), not a
# measured window; halb's nochecks/extchecks check nothing and are not profiled
profile_window() {
  local v=$1 rep=$2 pid=$3 data=$RUNDIR/perf-$1.data
  ((PROFILE && rep <= PROFILE_REPS)) || return 0
  [[ $v == nochecks || $v == extchecks ]] && return 0
  mkdir -p "$OUTDIR/raw/perf"
  note_cmd "perf record -q -g -t PID -o perf.data -- sleep $PROFILE_SECS   # profile of the checking thread after the idle window (rep <= $PROFILE_REPS)"
  if timeout $((PROFILE_SECS + 30)) perf record -q -g -t "$pid" -o "$data" -- sleep "$PROFILE_SECS" >"$RUNDIR/perf.err" 2>&1; then
    timeout 120 perf report -i "$data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 >"$OUTDIR/raw/perf/$v-r$rep.txt" || true
    /usr/bin/python3 "$HERE/lib/perf_buckets.py" "$OUTDIR" "$data" variant="$v" rep="$rep" secs="$PROFILE_SECS" | tee -a /dev/fd/3 >&2 || true
  else
    log "perf record failed ($v): $(head -c 300 "$RUNDIR/perf.err")"
  fi
  rm -f "$data" "$data.old"
}

state_of_halb() { /usr/bin/python3 "$HERE/lib/farm_state.py" halb "http://$STATS/stats;json"; }
# record_state VARIANT REP WHEN JSON
record_state() {
  /usr/bin/python3 -c '
import json, sys
s = json.loads(sys.argv[4]); s.update(variant=sys.argv[1], rep=int(sys.argv[2]), when=sys.argv[3])
open(sys.argv[5], "a").write(json.dumps(s, sort_keys=True) + "\n")
print("farm %s rep %s %s: %s UP of %s, check_failures %s, down_transitions %s, last checks %s" % (
    s["variant"], s["rep"], s["when"], s.get("by_state", {}).get("UP", 0), s.get("servers"),
    s.get("check_failures"), s.get("down_transitions"), s.get("last_checks", s.get("error"))))
' "$1" "$2" "$3" "$4" "$OUTDIR/states.jsonl"
}

# threads_report VARIANT REP PID -> raw/threads/VARIANT-rREP.txt, and the ps line printed once
PLACEMENT_OK=1 PLACEMENT_NOTE=""
threads_report() {
  local v=$1 rep=$2 pid=$3 f=$OUTDIR/raw/threads/$1-r$2.txt
  {
    echo "# ps -L -o tid,psr,comm -p $pid"
    ps -L -o tid,psr,comm -p "$pid"
    echo "# tid comm allowed_cpus last_cpu utime stime sched_ns voluntary_ctxt nonvoluntary_ctxt"
    thread_table "$pid"
  } >"$f"
  local main_allowed shard_allowed
  main_allowed=$(thread_table "$pid" | awk -v p="$pid" '$1 == p {print $3}')
  shard_allowed=$(thread_table "$pid" | awk '$2 ~ /^halb-shard/ {print $3}' | sort -u | tr '\n' ' ')
  if [[ $main_allowed != "$CONTROL_CORE" || ${shard_allowed% } != "$SHARD_CORE" ]]; then
    PLACEMENT_OK=0
    PLACEMENT_NOTE+="$v r$rep: control thread allowed on '$main_allowed', shard threads on '${shard_allowed% }'; "
  fi
}

# ---------------------------------------------------------------- halb / HAProxy runs
HPID=""
start_halb() { # start_halb VARIANT REP -> HPID
  local v=$1 rep=$2 rd=$RUNDIR/halb-$1
  rm -rf "$rd"; mkdir -p "$rd"
  halb_config "$v" "$rd" >"$rd/halb.toml"
  cp "$rd/halb.toml" "$OUTDIR/raw/configs/halb-$v.toml"
  HALB_LOG=warn taskset -c "$CONTROL_CORE,$SHARD_CORE" "$HALB_BIN" run -c "$rd/halb.toml" >"$rd/halb.out" 2>"$rd/halb.err" &
  HPID=$!; register_pid "$HPID"
  note_cmd "HALB_LOG=warn taskset -c $CONTROL_CORE,$SHARD_CORE $HALB_BIN run -c halb.toml   # raw/configs/halb-$v.toml"
  if ! wait_log "$rd/halb.err" 'halb: ready' 15 || ! wait_port 127.0.0.1 "$FE_PORT" 5; then
    log "halb ($v) did not start: $(tail -c 600 "$rd/halb.err")"; return 1
  fi
  [[ $(curl -s --max-time 5 "http://$FE/") == hello ]] || { log "GET / through halb ($v) failed"; return 1; }
  return 0
}
stop_halb() { # stop_halb VARIANT REP
  local v=$1 rep=$2 rd=$RUNDIR/halb-$1 st=0 clean=yes
  [[ -n $HPID ]] || return 0
  if is_running "$HPID"; then
    stop_pid "$HPID" 15 || clean="no (SIGKILL after 15s)"
    wait "$HPID" 2>/dev/null || st=$?
  else
    clean="had already exited"; wait "$HPID" 2>/dev/null || st=$?
  fi
  {
    echo "== $v rep $rep: stop status $st, clean=$clean"
    echo "-- stderr:"; head -n 30 "$rd/halb.err" 2>/dev/null || true
    echo "-- halb.log ($(wc -l <"$rd/halb.log" 2>/dev/null || echo 0) lines), first 40:"; head -n 40 "$rd/halb.log" 2>/dev/null || true
  } >>"$OUTDIR/raw/halb-logs.txt"
  grep -c . "$rd/halb.log" 2>/dev/null | sed "s/^/$v r$rep log_lines=/" >>"$OUTDIR/raw/halb-log-lines.txt" || true
  HPID=""
}

run_halb() { # run_halb VARIANT REP
  local v=$1 rep=$2 s
  log "== rep $rep/$REPEATS halb $v"
  if ! start_halb "$v" "$rep"; then
    echo "$v r$rep: failed to start" >>"$OUTDIR/raw/failures.txt"; stop_halb "$v" "$rep"; return 0
  fi
  threads_report "$v" "$rep" "$HPID"
  if [[ -z ${PS_SHOWN:-} ]]; then
    PS_SHOWN=1
    log "halb threads (pid $HPID; the control thread is the one with TID == PID):"
    ps -L -o tid,psr,comm -p "$HPID" | sed 's/^/    /' >&2
  fi
  local xpid="" xrd=$RUNDIR/extchecks
  if [[ $v == extchecks ]]; then
    # the same check traffic on core 0, made by another process (HAProxy): halb's shard
    # has the same neighbours as with its own checks, but halb checks nothing
    rm -rf "$xrd"; mkdir -p "$xrd"
    haproxy_config haproxy-http "$xrd" 1 >"$xrd/haproxy.cfg"
    cp "$xrd/haproxy.cfg" "$OUTDIR/raw/configs/extchecks-haproxy.cfg"
    taskset -c "$CONTROL_CORE" haproxy -f "$xrd/haproxy.cfg" -db >"$xrd/out.txt" 2>&1 &
    xpid=$!; register_pid "$xpid"
    note_cmd "taskset -c $CONTROL_CORE haproxy -f haproxy.cfg -db   # extchecks: raw/configs/extchecks-haproxy.cfg, next to halb nochecks"
  fi
  sleep "$SETTLE"
  s=$(state_of_halb); record_state "$v" "$rep" before "$s" | tee -a /dev/fd/3 >&2
  if [[ -n $xpid ]]; then
    s=$(/usr/bin/python3 "$HERE/lib/farm_state.py" haproxy "$xrd/haproxy.sock"); record_state "$v-haproxy" "$rep" before "$s" | tee -a /dev/fd/3 >&2
  fi
  idle_window "$v" "$rep" "$HPID" halb
  profile_window "$v" "$rep" "$HPID"
  # the remote farm shares the shard's core: idle windows only
  if [[ $(variant_where "$v") == loopback ]]; then
    for mode in $LOADS; do load_window "$v" "$rep" "$HPID" "$mode"; done
  fi
  s=$(state_of_halb); record_state "$v" "$rep" after "$s" | tee -a /dev/fd/3 >&2
  if [[ -n $xpid ]]; then
    s=$(/usr/bin/python3 "$HERE/lib/farm_state.py" haproxy "$xrd/haproxy.sock"); record_state "$v-haproxy" "$rep" after "$s" | tee -a /dev/fd/3 >&2
    stop_pid "$xpid" 10 || true; wait "$xpid" 2>/dev/null || true
  fi
  is_running "$HPID" || echo "$v r$rep: halb died during the measurement" >>"$OUTDIR/raw/failures.txt"
  stop_halb "$v" "$rep"
}

run_haproxy() { # run_haproxy VARIANT REP (reference: idle window only)
  local v=$1 rep=$2 rd=$RUNDIR/$1 pid s
  log "== rep $rep reference $v"
  rm -rf "$rd"; mkdir -p "$rd"
  haproxy_config "$v" "$rd" >"$rd/haproxy.cfg"
  cp "$rd/haproxy.cfg" "$OUTDIR/raw/configs/$v.cfg"
  haproxy -c -q -f "$rd/haproxy.cfg" >"$rd/check.txt" 2>&1 || { log "haproxy -c failed: $(head -c 400 "$rd/check.txt")"; return 0; }
  taskset -c "$CONTROL_CORE" haproxy -f "$rd/haproxy.cfg" -db >"$rd/out.txt" 2>&1 &
  pid=$!; register_pid "$pid"
  note_cmd "taskset -c $CONTROL_CORE haproxy -f haproxy.cfg -db   # raw/configs/$v.cfg"
  wait_port 127.0.0.1 "$FE_PORT" 10 || { log "haproxy did not start"; stop_pid "$pid" 5 || true; return 0; }
  sleep "$SETTLE"
  s=$(/usr/bin/python3 "$HERE/lib/farm_state.py" haproxy "$rd/haproxy.sock"); record_state "$v" "$rep" before "$s" | tee -a /dev/fd/3 >&2
  idle_window "$v" "$rep" "$pid" proc
  profile_window "$v" "$rep" "$pid"
  s=$(/usr/bin/python3 "$HERE/lib/farm_state.py" haproxy "$rd/haproxy.sock"); record_state "$v" "$rep" after "$s" | tee -a /dev/fd/3 >&2
  stop_pid "$pid" 10 || true; wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- measurements
read -r -a VL <<<"$VARIANTS"
NV=${#VL[@]}
REFS=(haproxy-http haproxy-tcp)
((REMOTE)) && REFS+=(haproxy-http-remote haproxy-tcp-remote)
NR=${#REFS[@]}
log "plan: $REPEATS x [$VARIANTS] (idle ${IDLE_SECS}s + wrk ${DURATION}s x [$LOADS] each; *-remote: idle only)$( ((REFERENCE)) && echo " + $REF_REPEATS x [${REFS[*]}] (idle ${IDLE_SECS}s)"); load now $(cut -d' ' -f1 /proc/loadavg)"
for ((rep = 1; rep <= REPEATS; rep++)); do
  for ((i = 0; i < NV; i++)); do
    run_halb "${VL[$(((i + rep - 1) % NV))]}" "$rep"
  done
  if ((REFERENCE && rep <= REF_REPEATS)); then
    for ((i = 0; i < NR; i++)); do run_haproxy "${REFS[$(((i + rep - 1) % NR))]}" "$rep"; done
  fi
done

# ---------------------------------------------------------------- summary
{
  echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "rustc_at_end=$(rustc_count)"
  echo "measuring_s=$((SECONDS - T_START))"
  echo "placement_ok=$PLACEMENT_OK${PLACEMENT_NOTE:+ ($PLACEMENT_NOTE)}"
} >>"$OUTDIR/env.txt"
cp "$RUNDIR/nginx/nginx-error.log" "$OUTDIR/raw/nginx-error.log" 2>/dev/null || true
/usr/bin/python3 "$HERE/lib/summarize.py" "$OUTDIR" >"$OUTDIR/summary.md.tmp" && mv "$OUTDIR/summary.md.tmp" "$OUTDIR/summary.md"
cat "$OUTDIR/summary.md"
log "done in $((SECONDS - T_START)) s: $OUTDIR/summary.md"
