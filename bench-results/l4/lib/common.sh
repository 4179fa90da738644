# shellcheck shell=bash
# shellcheck disable=SC2034  # PROXY_PID / QUIET_* are read by the caller
# Common helpers for the L4 benchmark (adapted from ../shared/anchors/scripts/common.sh).
# Source this file. It provides:
#   - PID bookkeeping: every process we start is registered and killed BY PID on exit
#     (TERM to the process tree, then KILL), never by name.
#   - A global watchdog bounding the whole script (start_watchdog SECONDS).
#   - wait_quiet: block until the shared machine is idle before a measured run.
#   - CPU accounting: /proc/stat per core, /proc/PID/stat per process (all threads),
#     /proc/PID/task/*/schedstat (ns) as a cross-check.

set -o pipefail

CLK_TCK=$(getconf CLK_TCK)
declare -a _PIDS=()
declare -a _CLEANUP_HOOKS=()

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# register_pid PID -> killed (TERM, then KILL) by PID on exit
register_pid() { _PIDS+=("$1"); }
# on_exit 'shell code' -> run on exit, in reverse order of registration
on_exit() { _CLEANUP_HOOKS+=("$1"); }

_kill_pid_tree() {
  # TERM a PID and its children (recursively), by PID only
  local p=$1 c
  [[ -d /proc/$p ]] || return 0
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do _kill_pid_tree "$c"; done
  kill -TERM "$p" 2>/dev/null || true
}

_cleanup() {
  local rc=$? i p
  trap - EXIT INT TERM
  [[ -n ${_WATCHDOG_PID:-} ]] && kill "$_WATCHDOG_PID" 2>/dev/null
  for ((i=${#_PIDS[@]}-1; i>=0; i--)); do _kill_pid_tree "${_PIDS[i]}"; done
  for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    local alive=0
    for p in "${_PIDS[@]}"; do [[ -d /proc/$p ]] && alive=1; done
    ((alive)) || break; sleep 0.2
  done
  for p in "${_PIDS[@]}"; do [[ -d /proc/$p ]] && kill -KILL "$p" 2>/dev/null; done
  for ((i=${#_CLEANUP_HOOKS[@]}-1; i>=0; i--)); do eval "${_CLEANUP_HOOKS[i]}" || true; done
  exit "$rc"
}
trap _cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# start_watchdog SECONDS : SIGTERM this script after SECONDS (hard bound on run time)
start_watchdog() {
  local secs=$1 me=$BASHPID
  (
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$secs" & sp=$!
    wait "$sp" || exit 0
    echo "[watchdog] ${secs}s exceeded, terminating $me" >&2; kill -TERM "$me"
  ) &
  _WATCHDOG_PID=$!
}

# wait_port HOST PORT [TIMEOUT_S] : poll until a TCP connect succeeds
wait_port() {
  local host=$1 port=$2 t=${3:-5} i
  for ((i=0; i<t*20; i++)); do
    bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# wait_log FILE REGEX [TIMEOUT_S] : poll until FILE contains a line matching REGEX
wait_log() {
  local f=$1 re=$2 t=${3:-10} i
  for ((i=0; i<t*20; i++)); do grep -qE "$re" "$f" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}

# cpu_snapshot -> one line per core: "cpuN busy total" (jiffies)
cpu_snapshot() {
  awk '/^cpu[0-9]+ /{busy=$2+$3+$4+$7+$8+$9; tot=busy+$5+$6; printf "%s %.0f %.0f\n",$1,busy,tot}' /proc/stat
}
# cpu_pct "SNAP_BEFORE" "SNAP_AFTER" CORE -> busy percent of that core between snapshots
cpu_pct() {
  paste <(echo "$1") <(echo "$2") | awk -v c="cpu$3" '$1==c{b=$5-$2; t=$6-$3; printf "%.1f", (t>0?100*b/t:0)}'
}
# total_busy -> busy jiffies summed over all cores
total_busy() { awk '/^cpu[0-9]+ /{s+=$2+$3+$4+$7+$8+$9} END{print s}' /proc/stat; }

# proc_ticks PID... -> sum of utime+stime in jiffies. /proc/PID/stat is process-wide:
# it covers every thread of the process, including threads that already exited.
proc_ticks() {
  local s=0 p v
  for p in "$@"; do
    v=$(awk '{print $14+$15}' /proc/"$p"/stat 2>/dev/null || echo 0); s=$((s+${v:-0}))
  done
  echo "$s"
}
# proc_sched_ns PID -> sum of sum_exec_runtime (ns) over the live threads (cross-check)
proc_sched_ns() {
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END{printf "%.0f", s}'
}
# children PID -> direct child PIDs
children() { cat /proc/"$1"/task/*/children 2>/dev/null; }
# is_running PID -> 0 if PID exists and is not a zombie (our proxies are started from a
# command substitution, so they are reparented and reaped by init, possibly late)
is_running() {
  local st
  [[ -r /proc/$1/stat ]] || return 1
  st=$(sed 's/.*) //' /proc/"$1"/stat 2>/dev/null | cut -d' ' -f1 || true)
  [[ -n $st && $st != Z && $st != X ]]
}
# wait_gone PID [TIMEOUT_S] : poll until PID has exited (works for non-children)
wait_gone() {
  local p=$1 t=${2:-5} i
  for ((i=0; i<t*50; i++)); do is_running "$p" || return 0; sleep 0.02; done
  return 1
}
# stop_pid PID [TIMEOUT_S] : TERM by PID, wait, then KILL by PID. Returns 0 if it exited
# on TERM within the timeout, 1 if it had to be killed.
stop_pid() {
  kill -TERM "$1" 2>/dev/null || true
  wait_gone "$1" "${2:-5}" && return 0
  kill -KILL "$1" 2>/dev/null || true; wait_gone "$1" 2 || true
  return 1
}
# rustc_count -> number of rustc processes running right now (someone is building)
rustc_count() { pgrep -c -x rustc 2>/dev/null || true; }

# wait_quiet [MAX_BUSY_PCT=10] [QUIET_SECS=3] [TIMEOUT_S=120]
# Blocks until the whole machine (all cores) was below MAX_BUSY_PCT for QUIET_SECS
# consecutive seconds. Returns 1 on timeout. Sets QUIET_WAITED (s) and QUIET_LAST_PCT.
wait_quiet() {
  local max=${1:-10} need=${2:-3} to=${3:-120} ok=0 t=0 a b n
  n=$(grep -c "^cpu[0-9]" /proc/stat)   # not nproc: it follows our own (pinned) affinity
  QUIET_WAITED=0 QUIET_LAST_PCT=
  while ((t < to)); do
    a=$(total_busy); sleep 1; b=$(total_busy); t=$((t+1))
    QUIET_WAITED=$t
    QUIET_LAST_PCT=$(awk -v d="$((b-a))" -v hz="$CLK_TCK" -v n="$n" 'BEGIN{printf "%.1f", 100*d/(hz*n)}')
    if (( (b-a)*100 < max*CLK_TCK*n )); then ok=$((ok+1)); ((ok>=need)) && return 0; else ok=0; fi
  done
  log "wait_quiet: machine not quiet after ${to}s (last ${QUIET_LAST_PCT}% busy; continuing, run flagged)"
  return 1
}

# tcp_counters -> "name value" lines: Tcp (/proc/net/snmp) and TcpExt (/proc/net/netstat)
# counters of the network namespace (global to it: other loopback users add to them)
tcp_counters() {
  awk '$1=="Tcp:" {if (!h) {split($0,k); h=1} else for (i=2;i<=NF;i++) print "Tcp_" k[i], $i}' /proc/net/snmp
  awk '$1=="TcpExt:" {if (!h) {split($0,k); h=1} else for (i=2;i<=NF;i++) print "TcpExt_" k[i], $i}' /proc/net/netstat
}

# require_tools TOOL... : exit 2 naming the missing ones and the Debian packages that
# provide them (these scripts install nothing)
require_tools() {
  local t pkgs="" missing=()
  for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
  ((${#missing[@]})) || return 0
  for t in "${missing[@]}"; do
    case $t in taskset) pkgs+=" util-linux" ;; ss|ip) pkgs+=" iproute2" ;; *) pkgs+=" $t" ;; esac
  done
  echo "missing tools: ${missing[*]}" >&2
  echo "this script installs nothing; on Debian/Ubuntu install them with:  sudo apt-get install -y$pkgs" >&2
  exit 2
}
