# shellcheck shell=bash
# shellcheck disable=SC2034  # PROXY_PID / PROXY_CMD are read by the caller
# The L7 (mode http) proxies under test, each started in the foreground, pinned to CORE
# with taskset, and identified by PID (never by name).
#
# proxy_start VARIANT LISTEN BACKEND RUNDIR CORE -> sets PROXY_PID and PROXY_CMD (call it
#   directly, not in $(...), so the proxy is a child of the caller)
#   VARIANT: haproxy | halb | haproxy-log | halb-log   ("direct" is handled by the caller)
# proxy_ready VARIANT RUNDIR PORT PID -> 0 once the proxy accepts connections
# proxy_info VARIANT RUNDIR           -> one line of runtime counters
#
# HAProxy 2.6: `mode http`, `nbthread 1`, `cpu-map 1/1 CORE`, `option http-keep-alive`,
#   `http-reuse always`, no logger at all (no `log` line: nothing is formatted or sent).
# halb: `shards = 1`, `control_core = "shared"` (the control thread floats on the same
#   single core as the shard: the process is confined to CORE by taskset), `mode = "http"`,
#   `http_reuse = "always"`, log to a file in RUNDIR, run with HALB_LOG=warn: no access
#   log line per request (HAProxy logs nothing either).
# *-log variants (optional): the same with one access-log line per request —
#   HAProxy `option httplog` to stdout (a file), halb HALB_LOG=info to its log file.

proxy_kind() { echo "${1%%-*}"; }

proxy_start() {
  local variant=$1
  PROXY_PID="" PROXY_CMD=""
  mkdir -p "$4"
  case $variant in
    haproxy|haproxy-log) _haproxy_start "$@" ;;
    halb|halb-log) _halb_start "$@" ;;
    *) echo "proxies.sh: unknown variant $variant" >&2; return 1 ;;
  esac
}

# haproxy_config VARIANT LISTEN BACKEND RUNDIR CORE -> the configuration on stdout
haproxy_config() {
  local variant=$1 listen=$2 backend=$3 rundir=$4 core=$5 glog="" dlog=""
  if [[ $variant == haproxy-log ]]; then
    glog=$'\n    log stdout format raw local0 info'
    dlog=$'\n    log global\n    option httplog'
  fi
  cat <<EOF
global
    nbthread 1
    cpu-map 1/1 $core
    maxconn 4000
    stats socket $rundir/haproxy.sock mode 600 level admin$glog

defaults
    mode http$dlog
    option http-keep-alive
    timeout connect 2s
    timeout client  30s
    timeout server  30s
    timeout http-request 10s
    timeout http-keep-alive 30s
    maxconn 4000

frontend fe
    bind $listen
    default_backend be

backend be
    http-reuse always
    server s1 $backend
EOF
}

# halb_config VARIANT LISTEN BACKEND RUNDIR -> the configuration on stdout (keys: docs/http.md)
halb_config() {
  local variant=$1 listen=$2 backend=$3 rundir=$4
  cat <<EOF
[global]
shards = 1
control_core = "shared"
maxconn = 4000
log = "file:$rundir/halb.log"

[defaults]
mode = "http"

[defaults.timeouts]
connect = "2s"
client = "30s"
server = "30s"
http_request = "10s"
http_keep_alive = "30s"

[frontend.fe]
bind = ["$listen"]
mode = "http"
default_backend = "be"

[backend.be]
mode = "http"
http_reuse = "always"
pool_max_idle = 256

[[backend.be.server]]
name = "s1"
address = "$backend"
EOF
}

_haproxy_start() {
  local variant=$1 listen=$2 backend=$3 rundir=$4 core=$5
  local cfg=$rundir/haproxy.cfg
  haproxy_config "$@" >"$cfg"
  haproxy -c -q -f "$cfg" >&2 || return 1
  PROXY_CMD="taskset -c $core haproxy -f $cfg -db"
  taskset -c "$core" haproxy -f "$cfg" -db >>"$rundir/proxy.out" 2>>"$rundir/proxy.err" &
  PROXY_PID=$!
}

_halb_start() {
  local variant=$1 listen=$2 backend=$3 rundir=$4 core=$5 level=warn
  local cfg=$rundir/halb.toml
  [[ $variant == halb-log ]] && level=info
  [[ -x ${HALB_BIN:-} ]] || { echo "proxies.sh: halb binary not found (${HALB_BIN:-unset})" >&2; return 1; }
  halb_config "$@" >"$cfg"
  "$HALB_BIN" check -c "$cfg" >"$rundir/halb-check.out" 2>&1 || { cat "$rundir/halb-check.out" >&2; return 1; }
  PROXY_CMD="HALB_LOG=$level taskset -c $core $HALB_BIN run -c $cfg"
  HALB_LOG=$level taskset -c "$core" "$HALB_BIN" run -c "$cfg" >>"$rundir/proxy.out" 2>>"$rundir/proxy.err" &
  PROXY_PID=$!
}

proxy_ready() {
  local variant=$1 rundir=$2 port=$3 pid=$4
  if [[ $(proxy_kind "$variant") == halb ]]; then
    # "halb: ready" goes to stderr whatever HALB_LOG says
    wait_log "$rundir/proxy.err" 'halb: ready' 10 || { is_running "$pid" || return 1; }
  fi
  is_running "$pid" || return 1
  wait_port 127.0.0.1 "$port" 5
}

_haproxy_cmd() { # _haproxy_cmd SOCK CMD -> raw answer
  /usr/bin/python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
d = b""
while True:
    x = s.recv(65536)
    if not x: break
    d += x
print(d.decode(), end="")
PY
}

# proxy_info VARIANT RUNDIR -> counters: for HAProxy, connections/requests and backend
# connection reuse (proves keep-alive to nginx); for halb, its log line count.
proxy_info() {
  local variant=$1 rundir=$2
  case $(proxy_kind "$variant") in
    haproxy)
      { _haproxy_cmd "$rundir/haproxy.sock" "show info" 2>/dev/null |
          awk -F': ' '$1 ~ /^(CumConns|CumReq|Idle_pct|Uptime_sec)$/ {printf "%s=%s ", $1, $2}'
        _haproxy_cmd "$rundir/haproxy.sock" "show stat" 2>/dev/null |
          awk -F, 'NR==1 { for (i=1;i<=NF;i++) { h=$i; sub(/^# /,"",h); c[h]=i } }
                   NR>1 && $2=="s1" { printf "s1_stot=%s s1_connect=%s s1_reuse=%s s1_hrsp_2xx=%s", $c["stot"], $c["connect"], $c["reuse"], $c["hrsp_2xx"] }'
        echo; } ;;
    halb)
      local n
      n=$(grep -c 'halb::access' "$rundir/halb.log" 2>/dev/null || true)
      echo "access_log_lines=${n:-0} log_bytes=$(stat -c %s "$rundir/halb.log" 2>/dev/null || echo 0)" ;;
  esac
}

# proxy_threads PID -> per-thread table: tid, name, allowed CPUs, last CPU, utime+stime ticks
proxy_threads() {
  local pid=$1 t
  printf '  %-8s %-18s %-8s %-8s %s\n' tid comm allowed lastcpu ticks
  for t in /proc/"$pid"/task/*; do
    [[ -r $t/stat ]] || continue
    printf '  %-8s %-18s %-8s %-8s %s\n' "${t##*/}" "$(cat "$t"/comm 2>/dev/null)" \
      "$(awk '/^Cpus_allowed_list/{print $2}' "$t"/status 2>/dev/null)" \
      "$(sed 's/.*) //' "$t"/stat | awk '{print $37}')" \
      "$(sed 's/.*) //' "$t"/stat | awk '{print $12+$13}')"
  done
}
