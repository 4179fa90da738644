#!/usr/bin/env bash
# The coordinated-omission check at full scale: a backend that stalls for 1 s every 10 s.
#
#   nginx (one worker) ........ core NGINX_CORE (0); stalled by SIGSTOP for STALL_MS every
#                               PERIOD_S seconds (a real server that stops answering)
#   halb-loadtest ............. core LOAD_CORE (1)
#
# Two runs of DURATION each against the same stalling nginx, same connections:
#   open loop   halb-loadtest --rate RATE  (latency from each request's intended send time)
#   closed loop halb-loadtest              (as fast as it goes: the stall delays only the
#                                           few requests in flight, then nothing is sent)
# The open-loop p99 must show the stall (about STALL_MS: ~10 % of the intended sends fall
# in a stall), the closed-loop p99 must not. Output: results/stall-<UTC date-time>/
# (summary.md, open.json, closed.json, *.hgrm, stall.svg, stall-times.txt, env.txt).
#
# It does not build: cargo build --release -p halb-loadtest first.
# Env knobs: DURATION (30) RATE (2000) CONNS (50) STALL_MS (1000) PERIOD_S (10)
#            NGINX_CORE LOAD_CORE PORT LOADTEST_BIN OUTDIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=../l4/lib/common.sh
source "$REPO/bench-results/l4/lib/common.sh"
# shellcheck source=../l4/lib/backend-nginx.sh
source "$REPO/bench-results/l4/lib/backend-nginx.sh"

DURATION=${DURATION:-30} RATE=${RATE:-2000} CONNS=${CONNS:-50}
STALL_MS=${STALL_MS:-1000} PERIOD_S=${PERIOD_S:-10}
NGINX_CORE=${NGINX_CORE:-0} LOAD_CORE=${LOAD_CORE:-1} PORT=${PORT:-18510}
LOADTEST_BIN=${LOADTEST_BIN:-$REPO/target/release/halb-loadtest}
OUTDIR=${OUTDIR:-$HERE/results/stall-$(date -u +%Y-%m-%d-%H%M)}

for t in nginx curl taskset python3; do
  command -v "$t" >/dev/null || { echo "missing $t; this script installs nothing: sudo apt-get install -y ${t/taskset/util-linux}" >&2; exit 2; }
done
[[ -x $LOADTEST_BIN ]] || die "no $LOADTEST_BIN: build it first: (cd $REPO && cargo build --release -p halb-loadtest)"
start_watchdog $((2 * DURATION + 120))
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
RUNDIR=$(mktemp -d /tmp/halb-bench-stall.XXXXXX)
on_exit "rm -rf '$RUNDIR'"
mkdir -p "$RUNDIR/www"
NGX=$(backend_start "127.0.0.1:$PORT" "$RUNDIR/www" "$RUNDIR/nginx" "$NGINX_CORE"); register_pid "$NGX"
wait_port 127.0.0.1 "$PORT" 5 || die "nginx did not start"
sleep 0.3
WORKER=$(children "$NGX")
[[ -n $WORKER ]] || die "no nginx worker"
[[ $(curl -sf --max-time 2 "http://127.0.0.1:$PORT/ok") == ok ]] || die "nginx /ok probe failed"
# never leave the worker stopped
on_exit "kill -CONT $WORKER 2>/dev/null"

{
  echo "date_utc=$(date -u -Is)"
  echo "kernel=$(uname -r) $(uname -m) cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo) ncpu=$(grep -c '^cpu[0-9]' /proc/stat)"
  echo "pinning: nginx (1 worker) -> core $NGINX_CORE; halb-loadtest -> core $LOAD_CORE"
  echo "halb-loadtest=$("$LOADTEST_BIN" --version)  git=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "stall: SIGSTOP the nginx worker for ${STALL_MS} ms every ${PERIOD_S} s; DURATION=${DURATION}s RATE=$RATE CONNS=$CONNS"
} >"$OUTDIR/env.txt"

# stall_loop LOG: SIGSTOP/SIGCONT the worker on a fixed period, logging each stall
stall_loop() {
  local log=$1 ms=$STALL_MS
  while :; do
    sleep "$((PERIOD_S * 1000 - ms))e-3"
    kill -STOP "$WORKER"; echo "stop $(date +%s.%N)" >>"$log"
    sleep "${ms}e-3"
    kill -CONT "$WORKER"; echo "cont $(date +%s.%N)" >>"$log"
  done
}

URL="http://127.0.0.1:$PORT/ok"
run() { # NAME EXTRA_FLAGS...
  local name=$1; shift
  local -a cmd=(taskset -c "$LOAD_CORE" "$LOADTEST_BIN" -c "$CONNS" -d "${DURATION}s" --timeout 5s
                --json --hist-out "$OUTDIR/$name.hgrm" "$@" "$URL")
  echo "$(printf '%q ' "${cmd[@]}")" >>"$OUTDIR/commands.txt"
  stall_loop "$OUTDIR/stall-times.txt" &
  local sp=$!; register_pid "$sp"
  "${cmd[@]}" >"$OUTDIR/$name.json" || true
  kill "$sp" 2>/dev/null; wait "$sp" 2>/dev/null || true
  kill -CONT "$WORKER"
  log "$name: $(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(f"{v["requests_per_sec"]:,.0f} req/s p99 {v["latency_us"]["p99"]/1000:.1f} ms max {v["latency_us"]["max"]/1000:.1f} ms errors {v["errors_total"]}")' "$OUTDIR/$name.json")"
}
log "open loop at $RATE req/s, then closed loop, ${DURATION}s each, nginx stalled ${STALL_MS} ms every ${PERIOD_S} s"
run open --rate "$RATE"
run closed

"$LOADTEST_BIN" plot "$OUTDIR/stall.svg" --title "nginx stalled ${STALL_MS} ms every ${PERIOD_S} s" \
  "open loop ($RATE req/s)=$OUTDIR/open.hgrm" "closed loop=$OUTDIR/closed.hgrm"
python3 - "$OUTDIR" "$STALL_MS" <<'PY' >"$OUTDIR/summary.md"
import json, sys, pathlib
out, stall = pathlib.Path(sys.argv[1]), int(sys.argv[2])
env = (out / "env.txt").read_text()
print("# Coordinated omission: a backend stalled 1 s every 10 s\n")
print("```\n" + env.strip() + "\n```\n")
print("| loop | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |")
print("|---|---|---|---|---|---|---|---|")
rows = {}
for name in ("open", "closed"):
    v = json.loads((out / f"{name}.json").read_text())
    l = {k: v["latency_us"][k] / 1000 for k in ("p50", "p90", "p99", "p999", "max")}
    rows[name] = l
    print(f"| {name} | {v['requests_per_sec']:,.0f} | {l['p50']:.2f} | {l['p90']:.2f} | {l['p99']:.1f} | "
          f"{l['p999']:.1f} | {l['max']:.1f} | {v['errors_total']} |")
shows = rows["open"]["p99"] >= stall / 2
hides = rows["closed"]["p99"] < stall / 10
print(f"\nOpen-loop p99 shows the stall (≥ {stall // 2} ms): **{'yes' if shows else 'NO'}**. "
      f"Closed-loop p99 hides it (< {stall // 10} ms): **{'yes' if hides else 'NO'}**.")
print("Plot: [stall.svg](stall.svg); stall times: stall-times.txt; commands: commands.txt.")
PY
cat "$OUTDIR/summary.md"
