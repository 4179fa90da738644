# shellcheck shell=bash
# VRRP plugin: Keepalived (VRRP only, -P). Same functions as vrrp-halb.sh:
#   dataplane_start NS NAME RUNDIR  -> PIDs (one a line) of what answers VIP:80 with NAME
#   vrrp_start NS NAME PRIO VERSION ADVERT_S VIP_CIDR IFACE VRID RUNDIR -> main PID
#   vrrp_kill PID RUNDIR NAME       -> failure without goodbye
#   vrrp_version                    -> one line

vrrp_version() { keepalived -v 2>&1 | sed -n 1p; }

dataplane_start() { # the box's HAProxy on 0.0.0.0:80, as halb: forwarding to a local
  # responder on 127.0.0.1:8080 answering NAME, and denying SAT_PATH itself (403); pinned to
  # DATA_CORE as halb's shard is. Without HAProxy, the responder alone on 0.0.0.0:80.
  local ns=$1 name=$2 rd=$3
  if command -v haproxy >/dev/null; then
    ip netns exec "$ns" taskset -c "${DATA_CORE:-0}" "$PYTHON" "$LIB/responder.py" 127.0.0.1 8080 "$name" "$MAX_RUNTIME" \
        >"$rd/responder-$name.log" 2>&1 &
    echo $!
    cat >"$rd/haproxy-$name.cfg" <<EOC
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 0.0.0.0:80
    http-request deny deny_status 403 if { path_beg ${SAT_PATH:-/load} }
    default_backend app
backend app
    server local 127.0.0.1:8080 check inter 200ms rise 1 fall 2
EOC
    ip netns exec "$ns" taskset -c "${DATA_CORE:-0}" haproxy -f "$rd/haproxy-$name.cfg" -db \
        >"$rd/haproxy-$name.log" 2>&1 &
  else
    ip netns exec "$ns" taskset -c "${DATA_CORE:-0}" "$PYTHON" "$LIB/responder.py" 0.0.0.0 80 "$name" "$MAX_RUNTIME" \
        >"$rd/responder-$name.log" 2>&1 &
  fi
  echo $!
}

vrrp_start() {
  local ns=$1 name=$2 prio=$3 ver=$4 adv=$5 vip=$6 ifc=$7 vrid=$8 rd=$9
  local cfg=$rd/keepalived-$name.conf state=BACKUP
  ((prio > 100)) && state=MASTER
  cat >"$cfg" <<EOC
global_defs {
    router_id $name
    max_auto_priority -1
}
vrrp_instance VI_$vrid {
    state $state
    interface $ifc
    virtual_router_id $vrid
    priority $prio
    advert_int $adv
    version $ver
    virtual_ipaddress {
        $vip dev $ifc
    }
}
EOC
  # -n foreground, -l log to stderr, -D detailed, -P VRRP only; private pid files so
  # several instances run on one host
  ip netns exec "$ns" taskset -c "${CONTROL_CORE:-1}" keepalived -n -l -D -P -f "$cfg" \
      -p "$rd/keepalived-$name.pid" -r "$rd/vrrp-$name.pid" -c "$rd/checkers-$name.pid" \
      >"$rd/keepalived-$name.log" 2>&1 &
  echo $!
}

# Whole appliance dies: freeze the VRRP child first (keepalived's child exits gracefully,
# with a priority-0 advert, when only its parent is killed), then SIGKILL both. No goodbye
# advert; the VIP stays configured on lb1 (stale), as after a real crash.
vrrp_kill() {
  local pid=$1 rd=$2 name=$3 child
  child=$(cat "$rd/vrrp-$name.pid" 2>/dev/null || true)
  [[ -n $child ]] && kill -STOP "$child" 2>/dev/null
  kill -KILL "$pid" 2>/dev/null
  [[ -n $child ]] && kill -KILL "$child" 2>/dev/null
  return 0
}
