# shellcheck shell=bash
# Helpers of bench-results/vrrp/run.sh (source it): the PID registry + EXIT trap that kills
# by PID, the watchdog and the waits come from the L4 bench's helpers (as control/ and l7/
# use them); here: the private netns LAN (nothing is created in the root namespace) and
# small waits on it.

# shellcheck source=../../l4/lib/common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../../l4/lib" && pwd)/common.sh"

fcalc() { awk "BEGIN{print $*}"; }

# ---------------------------------------------------------------------------------------
# The LAN: $NS_LB1 (eth0 $NET.11), $NS_LB2 (.12), $NS_CLIENT (.2) on br0 in $NS_SW
# (mcast_snooping 0). IPv6 off in every namespace (clean captures). Names carry the
# script's pid ($NS_PREFIX, default hvb<pid>) so two runs never collide.
# ---------------------------------------------------------------------------------------
NS_PREFIX=${NS_PREFIX:-hvb$$}
NS_LB1=$NS_PREFIX-lb1 NS_LB2=$NS_PREFIX-lb2 NS_CLIENT=$NS_PREFIX-client NS_SW=$NS_PREFIX-sw
NET=${NET:-10.99.0}

netns_teardown() { # kill what still runs inside (by PID), delete the namespaces
  local ns pids
  for ns in "$NS_CLIENT" "$NS_LB1" "$NS_LB2" "$NS_SW"; do
    [[ -e /run/netns/$ns ]] || continue
    pids=$(ip netns pids "$ns" 2>/dev/null)
    # shellcheck disable=SC2086
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
    ip netns del "$ns" 2>/dev/null || true
  done
}

_mkns() {
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

_attach() { # _attach NS ADDR/PLEN
  _mkns "$1"
  ip link add eth0 netns "$1" type veth peer name "v-${1##*-}" netns "$NS_SW"
  ip -n "$NS_SW" link set "v-${1##*-}" master br0 up
  ip -n "$1" addr add "$2" dev eth0
  ip -n "$1" link set eth0 up
}

netns_setup() {
  netns_teardown
  _mkns "$NS_SW"
  ip -n "$NS_SW" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
  ip -n "$NS_SW" link set br0 up
  _attach "$NS_LB1" "$NET.11/24"
  _attach "$NS_LB2" "$NET.12/24"
  _attach "$NS_CLIENT" "$NET.2/24"
  # L2 reachability: a TCP connect to port 9 of each lb must be refused (RST) - no ping
  # needed
  local ip i ok out
  for ip in "$NET.11" "$NET.12"; do
    ok=0
    for ((i=0; i<50; i++)); do
      out=$(ip netns exec "$NS_CLIENT" timeout 1 bash -c "exec 3<>/dev/tcp/$ip/9" 2>&1 || true)
      if [[ $out == *refused* ]]; then ok=1; break; fi
      sleep 0.1
    done
    ((ok)) || die "client cannot reach $ip on the bench LAN"
  done
}

has_vip() { ip -n "$1" -br addr show dev eth0 2>/dev/null | grep -qw "$2/24"; }
wait_vip() { # wait_vip NS VIP present|absent TIMEOUT_S
  local i
  for ((i=0; i<$4*50; i++)); do
    if [[ $3 == present ]]; then has_vip "$1" "$2" && return 0; else has_vip "$1" "$2" || return 0; fi
    sleep 0.02
  done
  return 1
}

# wait_http NS HOST PORT TIMEOUT_S: until a TCP connect from NS succeeds
wait_tcp() {
  local i
  for ((i=0; i<$4*20; i++)); do
    ip netns exec "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
