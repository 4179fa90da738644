# shellcheck shell=bash
# Backend: one nginx worker pinned to a core, foreground (daemon off).
# (Same configuration as ../shared/anchors/scripts/backend-nginx.sh.)
#   /ok  -> 200 "ok\n" (3-byte body, no disk access)
#   /*   -> static files from DOCROOT (sendfile on)
# backend_start LISTEN(ip:port) DOCROOT RUNDIR CORE  -> prints the master PID

backend_start() {
  local listen=$1 docroot=$2 rundir=$3 core=$4
  local cfg=$rundir/nginx.conf
  mkdir -p "$rundir"
  cat >"$cfg" <<NGX
daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity $(printf '%d' $((10**core)));
worker_rlimit_nofile 20000;
pid $rundir/nginx.pid;
error_log $rundir/nginx-error.log warn;
events { worker_connections 10000; use epoll; multi_accept on; }
http {
    access_log off;
    default_type text/plain;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 60s;
    keepalive_requests 10000000;
    client_body_temp_path $rundir/tmp_body;
    proxy_temp_path $rundir/tmp_proxy;
    fastcgi_temp_path $rundir/tmp_fcgi;
    uwsgi_temp_path $rundir/tmp_uwsgi;
    scgi_temp_path $rundir/tmp_scgi;
    server {
        listen $listen backlog=4096;
        root $docroot;
        location = /ok { return 200 "ok\n"; }
    }
}
NGX
  nginx -t -q -p "$rundir" -c "$cfg" -e stderr >&2 || return 1
  taskset -c "$core" nginx -p "$rundir" -c "$cfg" -e "$rundir/nginx-error.log" >"$rundir/nginx.out" 2>&1 &
  echo $!
}
