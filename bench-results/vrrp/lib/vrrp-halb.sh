# shellcheck shell=bash
# VRRP plugin: halb (VRRP and the proxy in one process). Same functions as
# vrrp-keepalived.sh. halb's frontend binds VIP:80 (IP_FREEBIND, also while BACKUP) and
# forwards to a local responder on 127.0.0.1:8080 answering NAME; requests to $SAT_PATH
# (the saturation load) are answered by halb itself (deny 403), so the load saturates
# halb's shard, not the Python responder.
# Env: HALB (binary; default target/release/halb, else target/debug/halb), HALB_SHARDS=1

vrrp_version() { "$HALB" --version 2>&1 | sed -n 1p; }

dataplane_start() {
  local ns=$1 name=$2 rd=$3
  ip netns exec "$ns" taskset -c "${DATA_CORE:-0}" "$PYTHON" "$LIB/responder.py" 127.0.0.1 8080 "$name" "$MAX_RUNTIME" \
      >"$rd/responder-$name.log" 2>&1 &
  echo $!
}

_halb_duration() { awk -v s="$1" 'BEGIN{ms=int(s*1000+0.5); if (ms%1000==0) printf "%ds", ms/1000; else printf "%dms", ms}'; }

vrrp_start() {
  local ns=$1 name=$2 prio=$3 ver=$4 adv=$5 vip=$6 ifc=$7 vrid=$8 rd=$9
  local cfg=$rd/halb-$name.toml
  cat >"$cfg" <<EOC
[global]
shards = ${HALB_SHARDS:-1}
control_core = ${HALB_CONTROL_CORE:-${CONTROL_CORE:-1}}
admin_socket = "$rd/halb-$name.sock"

[defaults]
mode = "http"

[frontend.web]
bind = ["${vip%/*}:80"]
default_backend = "app"

[frontend.web.acl]
is_load = "path_beg ${SAT_PATH:-/load}"

[[frontend.web.http_request]]
deny = 403
if = "is_load"

[backend.app]
check = { type = "http", path = "/", inter = "200ms", rise = 1, fall = 2, timeout = "300ms" }

[[backend.app.server]]
name = "local"
address = "127.0.0.1:8080"
check = true

[vrrp.VI_$vrid]
interface = "$ifc"
virtual_router_id = $vrid
priority = $prio
advert_int = "$(_halb_duration "$adv")"
version = $ver
virtual_ipaddress = ["$vip"]
EOC
  ip netns exec "$ns" env NO_COLOR=1 HALB_LOG="${HALB_LOG:-info,halb::access=off}" "$HALB" run -c "$cfg" >"$rd/halb-$name.log" 2>&1 &
  echo $!
}

vrrp_kill() { kill -KILL "$1" 2>/dev/null; return 0; }
