# shellcheck shell=bash
# shellcheck disable=SC2034  # PROXY_PID / PROXY_CMD are read by the caller
# The proxies of the suite, one process per (layer, proxy), started in the foreground,
# pinned with taskset, identified by PID (never by name).
#
# suite_proxy_start PROXY LAYER LISTEN BACKEND RUNDIR CORE [CONFIG_CMD ARG...] -> sets PROXY_PID, PROXY_CMD
#   PROXY: haproxy | halb      LAYER: l4 (mode tcp) | l7 (mode http)
#   CONFIG_CMD (default suite_proxy_config) prints the configuration, called as
#   `CONFIG_CMD ARG... PROXY LAYER LISTEN BACKEND RUNDIR CORE` (the TLS benchmark's
#   tls_proxy_config adds a TLS listener); it is written to RUNDIR/haproxy.cfg or halb.toml,
#   checked, then run.
#   Call it directly (not in $(...)): the proxy stays a child of the caller.
# suite_proxy_ready PROXY RUNDIR PORT PID -> 0 once it accepts connections
#
# Both proxies get one thread on one core, no per-request log, the same timeouts:
#   HAProxy 2.6: `nbthread 1`, `cpu-map 1/1 CORE`; l4: `mode tcp` with
#     `option splice-response` (its fastest bulk mode, bench-results/l4); l7: `mode http`,
#     `option http-keep-alive`, `http-reuse always`.
#   halb: `shards = 1`, `control_core = "shared"` (the process is confined to CORE by
#     taskset), HALB_LOG=warn; l4: `mode = "tcp"` (splice, the default); l7:
#     `mode = "http"`, `http_reuse = "always"`.

suite_haproxy_config() { # LAYER LISTEN BACKEND RUNDIR CORE
  local layer=$1 listen=$2 backend=$3 rundir=$4 core=$5 mode=tcp extra="    option splice-response" reuse=""
  if [[ $layer == l7 ]]; then
    mode=http
    extra=$'    option http-keep-alive\n    timeout http-request 10s\n    timeout http-keep-alive 30s'
    reuse="    http-reuse always"
  fi
  cat <<CFG
global
    nbthread 1
    cpu-map 1/1 $core
    maxconn 4000
    stats socket $rundir/haproxy.sock mode 600 level admin

defaults
    mode $mode
    timeout connect 2s
    timeout client  30s
    timeout server  30s
$extra
    maxconn 4000

frontend fe
    bind $listen
    default_backend be

backend be
$reuse
    server s1 $backend
CFG
}

suite_halb_config() { # LAYER LISTEN BACKEND RUNDIR
  local layer=$1 listen=$2 backend=$3 rundir=$4 mode=tcp backend_extra="" timeouts=""
  if [[ $layer == l7 ]]; then
    mode=http
    backend_extra=$'http_reuse = "always"\npool_max_idle = 256'
    timeouts=$'http_request = "10s"\nhttp_keep_alive = "30s"'
  fi
  cat <<CFG
[global]
shards = 1
control_core = "shared"
maxconn = 4000
log = "file:$rundir/halb.log"

[defaults]
mode = "$mode"

[defaults.timeouts]
connect = "2s"
client = "30s"
server = "30s"
$timeouts

[frontend.fe]
bind = ["$listen"]
default_backend = "be"

[backend.be]
$backend_extra

[[backend.be.server]]
name = "s1"
address = "$backend"
CFG
}

suite_proxy_config() { # PROXY LAYER LISTEN BACKEND RUNDIR CORE
  case $1 in
    haproxy) suite_haproxy_config "$2" "$3" "$4" "$5" "$6" ;;
    halb) suite_halb_config "$2" "$3" "$4" "$5" ;;
  esac
}

suite_proxy_start() {
  local proxy=$1 layer=$2 listen=$3 backend=$4 rundir=$5 core=$6 cfg
  shift 6
  local -a config=(suite_proxy_config)
  (($#)) && config=("$@")
  PROXY_PID="" PROXY_CMD=""
  mkdir -p "$rundir"
  case $proxy in
    haproxy)
      cfg=$rundir/haproxy.cfg
      "${config[@]}" "$proxy" "$layer" "$listen" "$backend" "$rundir" "$core" >"$cfg"
      haproxy -c -q -f "$cfg" >&2 || return 1
      PROXY_CMD="taskset -c $core haproxy -f $cfg -db"
      taskset -c "$core" haproxy -f "$cfg" -db >>"$rundir/proxy.out" 2>>"$rundir/proxy.err" &
      PROXY_PID=$! ;;
    halb)
      cfg=$rundir/halb.toml
      [[ -x ${HALB_BIN:-} ]] || { echo "halb binary not found (${HALB_BIN:-unset})" >&2; return 1; }
      "${config[@]}" "$proxy" "$layer" "$listen" "$backend" "$rundir" "$core" >"$cfg"
      "$HALB_BIN" check -c "$cfg" >"$rundir/halb-check.out" 2>&1 || { cat "$rundir/halb-check.out" >&2; return 1; }
      PROXY_CMD="HALB_LOG=warn taskset -c $core $HALB_BIN run -c $cfg"
      HALB_LOG=warn taskset -c "$core" "$HALB_BIN" run -c "$cfg" >>"$rundir/proxy.out" 2>>"$rundir/proxy.err" &
      PROXY_PID=$! ;;
    *) echo "unknown proxy $proxy" >&2; return 1 ;;
  esac
}

suite_proxy_ready() { # PROXY RUNDIR PORT PID
  local proxy=$1 rundir=$2 port=$3 pid=$4
  if [[ $proxy == halb ]]; then
    # "halb: ready" goes to stderr whatever HALB_LOG says
    wait_log "$rundir/proxy.err" 'halb: ready' 10 || { is_running "$pid" || return 1; }
  fi
  is_running "$pid" || return 1
  wait_port 127.0.0.1 "$port" 5
}
