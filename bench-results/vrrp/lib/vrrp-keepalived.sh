# shellcheck shell=bash
# VRRP plugin: Keepalived (VRRP only, -P). Same functions as vrrp-halb.sh:
#   dataplane_start NS NAME RUNDIR  -> PIDs (one a line) of what answers VIP:80 with NAME
#   vrrp_start NS NAME PRIO VERSION ADVERT_S VIP_CIDR IFACE VRID RUNDIR -> main PID
#   vrrp_kill PID RUNDIR NAME       -> failure without goodbye
#   vrrp_version                    -> one line

vrrp_version() { keepalived -v 2>&1 | sed -n 1p; }

dataplane_start() { # a responder on 0.0.0.0:80 answering NAME (the box's "HAProxy")
  local ns=$1 name=$2 rd=$3
  ip netns exec "$ns" "$PYTHON" "$LIB/responder.py" 0.0.0.0 80 "$name" "$MAX_RUNTIME" \
      >"$rd/responder-$name.log" 2>&1 &
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
  ip netns exec "$ns" keepalived -n -l -D -P -f "$cfg" \
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
