# shellcheck shell=bash
# Configurations of the control-thread benchmark: nginx (the app server and the 1,000-server
# farm), halb (variants nochecks / http / tcp / extchecks / http-remote / tcp-remote) and the
# HAProxy reference (haproxy-http / haproxy-tcp / haproxy-http-remote / haproxy-tcp-remote).
#
# Farm addresses (FARM_ADDRS x FARM_PORTS servers, ports FARM_BASE_PORT ..
# FARM_BASE_PORT+FARM_PORTS-1, every farm server has its own (address, port) and nginx listens
# on each of them explicitly, no wildcard listener):
#   loopback  127.0.1.1 .. 127.0.1.FARM_ADDRS (nginx in the root network namespace, on core 0)
#   remote    FARM_NET.FARM_REMOTE_FIRST .. (FARM_NET.101 .. FARM_NET.150 by default), the
#             addresses of the farm end of a veth pair inside a network namespace the script
#             creates (run.sh, setup_remote_farm); the halb end is FARM_NET.1, the farm end
#             FARM_NET.2 (nginx's stub_status listener there)

# farm_servers [WHERE=loopback|remote] -> "name address" lines, FARM_ADDRS x FARM_PORTS of them
farm_servers() {
  local where=${1:-loopback} a p host
  for ((a = 1; a <= FARM_ADDRS; a++)); do
    if [[ $where == remote ]]; then host=$FARM_NET.$((FARM_REMOTE_FIRST + a - 1)); else host=127.0.1.$a; fi
    for ((p = 0; p < FARM_PORTS; p++)); do
      echo "f$a-$p $host:$((FARM_BASE_PORT + p))"
    done
  done
}

# variant_where VARIANT -> remote (VARIANT ends with -remote) | loopback
variant_where() { if [[ $1 == *-remote ]]; then echo remote; else echo loopback; fi; }

# nginx_config RUNDIR CORE [WHERE=loopback|remote] -> nginx.conf on stdout
#   loopback: APP (127.0.0.1:APP_PORT): /  -> "hello\n"; /health -> "ok\n"; /nginx_status -> stub_status
#   remote:   the same on FARM_NET.2:APP_PORT (the farm end of the veth; only stub_status is used)
#   farm listeners (same server block): /health -> 200 "ok\n"
nginx_config() {
  local rundir=$1 core=$2 where=${3:-loopback} name addr main=127.0.0.1:$APP_PORT
  [[ $where == remote ]] && main=$FARM_NET.2:$APP_PORT
  cat <<NGX
daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity $(printf '%d' $((10 ** core)));
worker_rlimit_nofile 20000;
pid $rundir/nginx.pid;
error_log $rundir/nginx-error.log warn;
events { worker_connections 10000; use epoll; multi_accept on; }
http {
    access_log off;
    default_type text/plain;
    tcp_nodelay on;
    keepalive_timeout 60s;
    keepalive_requests 10000000;
    client_body_temp_path $rundir/tmp_body;
    proxy_temp_path $rundir/tmp_proxy;
    fastcgi_temp_path $rundir/tmp_fcgi;
    uwsgi_temp_path $rundir/tmp_uwsgi;
    scgi_temp_path $rundir/tmp_scgi;
    server {
        listen $main backlog=4096;
NGX
  while read -r name addr; do
    echo "        listen $addr backlog=1024;   # $name"
  done < <(farm_servers "$where")
  cat <<NGX
        location = /health { return 200 "ok\n"; }
        location = /nginx_status { stub_status; }
        location / { return 200 "hello\n"; }
    }
}
NGX
}

# halb_config VARIANT RUNDIR -> halb.toml on stdout.
#   VARIANT: nochecks | http | tcp | extchecks | http-remote | tcp-remote
# (extchecks: halb as nochecks; HAProxy checks the farm next to it, see haproxy_config;
#  *-remote: the same checks against the farm in the network namespace, see farm_servers)
halb_config() {
  local variant=$1 rundir=$2 name addr check="" where
  where=$(variant_where "$variant")
  case ${variant%-remote} in
    http) check='check = { type = "http", path = "/health", inter = "1s", rise = 2, fall = 3, timeout = "1s" }' ;;
    tcp) check='check = { type = "tcp", inter = "1s", rise = 2, fall = 3, timeout = "1s" }' ;;
    nochecks|extchecks) ;;
    *) echo "configs.sh: unknown halb variant $variant" >&2; return 1 ;;
  esac
  cat <<EOF
# halb, variant "$variant": frontend fe -> backend app (1 server, not checked);
# backend farm: $((FARM_ADDRS * FARM_PORTS)) servers ($where)$([[ -n $check ]] && echo ", each checked" || echo ", none checked") (no frontend uses it).
[global]
shards = 1
control_core = $CONTROL_CORE
maxconn = 4000
log = "file:$rundir/halb.log"
admin_socket = "$rundir/admin.sock"

[defaults]
mode = "http"

[defaults.timeouts]
connect = "2s"
client = "30s"
server = "30s"
http_request = "10s"
http_keep_alive = "30s"

[stats]
bind = "127.0.0.1:$STATS_PORT"

[frontend.fe]
bind = ["127.0.0.1:$FE_PORT"]
default_backend = "app"

[backend.app]
http_reuse = "always"
pool_max_idle = 256

[[backend.app.server]]
name = "s1"
address = "127.0.0.1:$APP_PORT"

[backend.farm]
# No idle-connection pool (no frontend uses the farm). Needed up to 326dee6, whose
# descriptor budget counted pool_max_idle (default 64) per server even here, i.e. 64,000
# descriptors for 1,000 servers, above this machine's RLIMIT_NOFILE; kept for comparability.
pool_max_idle = 0
EOF
  if [[ -n $check ]]; then echo "$check"; fi
  while read -r name addr; do
    printf '\n[[backend.farm.server]]\nname = "%s"\naddress = "%s"\n' "$name" "$addr"
    if [[ -n $check ]]; then echo "check = true"; fi
  done < <(farm_servers "$where")
}

# haproxy_config VARIANT RUNDIR [CHECKS_ONLY] -> haproxy.cfg on stdout.
#   VARIANT: haproxy-http | haproxy-tcp | haproxy-http-remote | haproxy-tcp-remote
# The reference: the same farm and checks (inter 1s, rise 2, fall 3, 1 s timeout), on one
# thread pinned to the control core, no traffic. CHECKS_ONLY=1: no frontend (HAProxy runs
# next to halb and only checks the farm: the "extchecks" variant).
haproxy_config() {
  local variant=$1 rundir=$2 only=${3:-0} name addr chk="" where
  where=$(variant_where "$variant")
  [[ ${variant%-remote} == haproxy-http ]] && chk=$'\n    option httpchk GET /health'
  if ((only)); then
    cat <<EOF
global
    nbthread 1
    cpu-map 1/1 $CONTROL_CORE
    maxconn 4000
    stats socket $rundir/haproxy.sock mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client  30s
    timeout server  30s
    timeout check   1s

backend farm$chk
EOF
  else
    cat <<EOF
global
    nbthread 1
    cpu-map 1/1 $CONTROL_CORE
    maxconn 4000
    stats socket $rundir/haproxy.sock mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client  30s
    timeout server  30s
    timeout check   1s

frontend fe
    bind 127.0.0.1:$FE_PORT
    default_backend app

backend app
    server s1 127.0.0.1:$APP_PORT

backend farm$chk
EOF
  fi
  while read -r name addr; do
    echo "    server $name $addr check inter 1s rise 2 fall 3"
  done < <(farm_servers "$where")
}
