# shellcheck shell=bash
# shellcheck disable=SC2034  # PROXY_PID / QUIET_* are read by the caller
# The proxies under test, each started in the foreground, pinned, and identified by PID.
#
# proxy_start VARIANT LISTEN BACKEND RUNDIR CORE  -> sets PROXY_PID (call it directly, not in
#   $(...), so that the proxy is a child of the caller and `wait` returns its exit status)
#   VARIANT: haproxy-nosplice | haproxy-splice | halb-splice | halb-copy
#   (the pseudo-variant "direct" has no proxy and is handled by the caller)
# proxy_ready VARIANT RUNDIR PORT PID    -> 0 once the proxy accepts connections
# proxy_conns VARIANT RUNDIR             -> cumulative accepted connections (for cross-checks)
# proxy_digest_log VARIANT RUNDIR OUT    -> append a digest of the proxy's log to OUT, then
#                                           truncate the log (halb logs one line per connection)
#
# HAProxy: Debian 2.6 package, `mode tcp`, `nbthread 1`, `cpu-map 1/1 CORE`, logs errors only
# (same as ../shared/anchors/scripts/lb-haproxy.sh). "haproxy-splice" = `option
# splice-response`, the mode that really splices in 2.6 (splice-auto barely does).
# halb: `[global] shards = 1`, started as `taskset -c CORE halb run -c FILE`; it pins its
# shard to the CPUs of its affinity mask, and the control thread shares that core.

HALB_BIN=${HALB_BIN:-}

proxy_kind() { echo "${1%%-*}"; }

proxy_start() {
  local variant=$1 listen=$2 backend=$3 rundir=$4 core=$5
  PROXY_PID=""
  mkdir -p "$rundir"
  case $variant in
    haproxy-nosplice|haproxy-splice) _haproxy_start "$@" ;;
    halb-splice|halb-copy) _halb_start "$@" ;;
    *) echo "proxies.sh: unknown variant $variant" >&2; return 1 ;;
  esac
}

_haproxy_start() {
  local variant=$1 listen=$2 backend=$3 rundir=$4 core=$5 splice=""
  local cfg=$rundir/haproxy.cfg
  [[ $variant == haproxy-splice ]] && splice="option splice-response"
  cat >"$cfg" <<EOF
global
    nbthread 1
    cpu-map 1/1 $core
    maxconn 4000
    stats socket $rundir/haproxy.sock mode 600 level admin
    log stderr format raw local0 err

defaults
    mode tcp
    log global
    timeout connect 2s
    timeout client  30s
    timeout server  30s
    maxconn 4000
    $splice

frontend fe
    bind $listen
    default_backend be

backend be
    server s1 $backend
EOF
  haproxy -c -q -f "$cfg" >&2 || return 1
  taskset -c "$core" haproxy -f "$cfg" -db >>"$rundir/proxy.log" 2>&1 &
  PROXY_PID=$!
}

_halb_start() {
  local variant=$1 listen=$2 backend=$3 rundir=$4 core=$5 splice=true
  local cfg=$rundir/halb.toml
  [[ $variant == halb-copy ]] && splice=false
  [[ -x $HALB_BIN ]] || { echo "proxies.sh: halb binary not found ($HALB_BIN)" >&2; return 1; }
  cat >"$cfg" <<EOF
[global]
shards = 1
maxconn = 4000

[defaults]
mode = "tcp"

[defaults.timeouts]
connect = "2s"
client = "30s"
server = "30s"

[frontend.fe]
bind = ["$listen"]
default_backend = "be"

[backend.be]
splice = $splice

[[backend.be.server]]
name = "s1"
address = "$backend"
EOF
  "$HALB_BIN" check -c "$cfg" >"$rundir/halb-check.out" 2>&1 || { cat "$rundir/halb-check.out" >&2; return 1; }
  # append mode: the log can be truncated between runs without leaving a sparse file
  taskset -c "$core" "$HALB_BIN" run -c "$cfg" >>"$rundir/proxy.out" 2>>"$rundir/proxy.log" &
  PROXY_PID=$!
}

proxy_ready() {
  local variant=$1 rundir=$2 port=$3 pid=$4
  if [[ $(proxy_kind "$variant") == halb ]]; then
    wait_log "$rundir/proxy.log" 'halb: ready' 10 || { is_running "$pid" || return 1; }
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

proxy_conns() {
  local variant=$1 rundir=$2
  case $(proxy_kind "$variant") in
    haproxy) _haproxy_cmd "$rundir/haproxy.sock" "show info" 2>/dev/null | awk -F': ' '$1=="CumConns"{print $2}' ;;
    halb) local n; n=$(grep -c 'halb::access' "$rundir/proxy.log" 2>/dev/null || true); echo "${n:-0}" ;;
  esac
}

# proxy_info VARIANT RUNDIR -> one line of runtime counters (pipes, connections)
proxy_info() {
  local variant=$1 rundir=$2
  case $(proxy_kind "$variant") in
    haproxy) _haproxy_cmd "$rundir/haproxy.sock" "show info" 2>/dev/null |
               awk -F': ' '$1 ~ /^(PipesUsed|PipesFree|CumConns|MaxConnRate|Idle_pct|Uptime_sec)$/ {printf "%s=%s ", $1, $2}'; echo ;;
    halb) echo "access_log_lines=$(proxy_conns "$variant" "$rundir")" ;;
  esac
}

# proxy_digest_log VARIANT RUNDIR OUT LABEL
# halb: counts of access-log lines by end= / retries / server, plus every non-access line
# (capped); then truncates the log. haproxy: copies its (errors-only) log.
proxy_digest_log() {
  local variant=$1 rundir=$2 out=$3 label=$4
  [[ -f $rundir/proxy.log ]] || return 0
  {
    echo "== $label"
    if [[ $(proxy_kind "$variant") == halb ]]; then
      awk '/halb::access/ {
             n++; e="?"; r="?"; s="?"
             for (i=1;i<=NF;i++) { if ($i ~ /^end=/) e=substr($i,5); if ($i ~ /^retries=/) r=substr($i,9); if ($i ~ /^server=/) s=substr($i,8) }
             ends[e]++; if (r != "0") retr++; if (s == "-") nosrv++
             if (!(e in first)) first[e]=$1; last[e]=$1
           }
           END { printf "access_lines=%d", n; for (k in ends) printf " end_%s=%d", k, ends[k];
                 printf " retries_nonzero=%d server_dash=%d\n", retr, nosrv
                 for (k in ends) if (k != "closed") printf "  end=%s logged from %s to %s\n", k, first[k], last[k] }' "$rundir/proxy.log"
      grep -v 'halb::access' "$rundir/proxy.log" | head -n 50 || true
      # one sample access line per distinct end= value
      awk '/halb::access/ { for (i=1;i<=NF;i++) if ($i ~ /^end=/ && !seen[$i]++) print "sample: " $0 }' "$rundir/proxy.log"
    else
      head -n 50 "$rundir/proxy.log" || true
    fi
  } >>"$out"
  : >"$rundir/proxy.log"
}

# proxy_threads PID -> per-thread table: tid, name, allowed CPUs, last CPU, utime+stime ticks
proxy_threads() {
  local pid=$1 t
  printf '%-8s %-18s %-8s %-6s %s\n' tid comm allowed lastcpu ticks
  for t in /proc/"$pid"/task/*; do
    [[ -r $t/stat ]] || continue
    printf '%-8s %-18s %-8s %-6s %s\n' "${t##*/}" "$(cat "$t"/comm 2>/dev/null)" \
      "$(awk '/^Cpus_allowed_list/{print $2}' "$t"/status 2>/dev/null)" \
      "$(sed 's/.*) //' "$t"/stat | awk '{print $37}')" \
      "$(sed 's/.*) //' "$t"/stat | awk '{print $12+$13}')"
  done
}
