#!/usr/bin/env bash
# halb-loadtest vs wrk: same pinned core, same nginx, same connection count.
#
#   nginx (one worker) ........ core NGINX_CORE (0)
#   wrk / halb-loadtest ....... core LOAD_CORE (1), one at a time, alternating
#
# Matrix: CONNS (64 256) x MODES (keepalive close) x REPS (5) x {wrk, halb-loadtest},
# GET /ok (3-byte body), DURATION each. close = wrk -H "Connection: close" vs --close.
# Output: results/<UTC date-time>/ with raw/* (every tool's output), runs.csv, env.txt,
# summary.md (median [min..max] req/s per tool, ratio halb-loadtest / wrk).
#
# It does not build: build first with  cargo build --release -p halb-loadtest
# Env knobs: REPS DURATION CONNS MODES NGINX_CORE LOAD_CORE PORT LOADTEST_BIN MAX_RUNTIME
#            QUIET_MAX_PCT (wait before each run until the machine is below this % busy)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# log, die, require_tools (its EXIT/INT/TERM traps are replaced by this script's below)
# shellcheck source=../l4/lib/common.sh
source "$REPO/bench-results/l4/lib/common.sh"
# shellcheck source=../l4/lib/backend-nginx.sh
source "$REPO/bench-results/l4/lib/backend-nginx.sh"

REPS=${REPS:-5}
DURATION=${DURATION:-5}            # seconds
CONNS=${CONNS:-"64 256"}
MODES=${MODES:-"keepalive close"}
NGINX_CORE=${NGINX_CORE:-0} LOAD_CORE=${LOAD_CORE:-1}
PORT=${PORT:-18500}
LOADTEST_BIN=${LOADTEST_BIN:-$REPO/target/release/halb-loadtest}
MAX_RUNTIME=${MAX_RUNTIME:-900}
QUIET_MAX_PCT=${QUIET_MAX_PCT:-15} QUIET_TIMEOUT=${QUIET_TIMEOUT:-30}
OUTDIR=${OUTDIR:-$HERE/results/$(date -u +%Y-%m-%d-%H%M)}

# ------------------------------------------------------------------ preflight
require_tools nginx wrk taskset python3 curl
[[ -x $LOADTEST_BIN ]] || die "no $LOADTEST_BIN: build it first: (cd $REPO && cargo build --release -p halb-loadtest)"
[[ -n $(find "$REPO/loadtest/src" "$REPO/src" -newer "$LOADTEST_BIN" -name '*.rs' -print -quit) ]] &&
  log "warning: sources are newer than $LOADTEST_BIN (rebuild?)"
NCPU=$(grep -c '^cpu[0-9]' /proc/stat)
((NCPU >= 2)) || die "needs 2 cores (nginx on $NGINX_CORE, generators on $LOAD_CORE)"
if command -v ss >/dev/null && ss -Hltn "sport = :$PORT" | grep -q .; then die "port $PORT is in use (set PORT)"; fi

# ------------------------------------------------------------------ cleanup and bound
RUNDIR=$(mktemp -d /tmp/halb-bench-loadtest.XXXXXX)
NGX="" WATCHDOG=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n $WATCHDOG ]] && kill "$WATCHDOG" 2>/dev/null
  if [[ -n $NGX ]] && [[ -d /proc/$NGX ]]; then
    kill -TERM "$NGX" 2>/dev/null || true
    for _ in $(seq 20); do [[ -d /proc/$NGX ]] || break; sleep 0.1; done
    [[ -d /proc/$NGX ]] && kill -KILL "$NGX" 2>/dev/null
  fi
  rm -rf "$RUNDIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
mkdir -p "$OUTDIR/raw"
OUTDIR=$(cd "$OUTDIR" && pwd)
me=$$
# Bounded: TERM this script after MAX_RUNTIME s (its output closed, so it holds no pipe).
(
  sleep "$MAX_RUNTIME" & sp=$!
  trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  wait "$sp" && { echo "watchdog: ${MAX_RUNTIME}s exceeded, stopped" >"$OUTDIR/WATCHDOG"; kill -TERM "$me"; }
) >/dev/null 2>&1 &
WATCHDOG=$!
log "results -> $OUTDIR"

# ------------------------------------------------------------------ nginx
mkdir -p "$RUNDIR/www"
NGX=$(backend_start "127.0.0.1:$PORT" "$RUNDIR/www" "$RUNDIR/nginx" "$NGINX_CORE")
for _ in $(seq 50); do curl -sf --max-time 1 "http://127.0.0.1:$PORT/ok" >/dev/null && break; sleep 0.1; done
[[ $(curl -sf --max-time 2 "http://127.0.0.1:$PORT/ok") == ok ]] || die "nginx /ok probe failed ($RUNDIR/nginx/nginx-error.log)"

{
  echo "date_utc=$(date -u -Is)"
  echo "kernel=$(uname -r) $(uname -m)"
  echo "cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo) ncpu=$NCPU"
  echo "pinning: nginx (1 worker) -> core $NGINX_CORE; wrk -t1 / halb-loadtest --cores 1 -> core $LOAD_CORE"
  echo "wrk=$(wrk -v 2>&1 | head -1)"
  echo "nginx=$(nginx -v 2>&1)"
  echo "halb-loadtest=$("$LOADTEST_BIN" --version) ($LOADTEST_BIN, built $(date -u -r "$LOADTEST_BIN" -Is))"
  echo "git=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?') (working tree may differ)"
  echo "REPS=$REPS DURATION=${DURATION}s CONNS='$CONNS' MODES='$MODES'"
} >"$OUTDIR/env.txt"

# ------------------------------------------------------------------ measuring
busy_pct() { # machine busy % over $1 seconds
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat); sleep "$1"
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," "); u=y[1]-x[1]; i=y[2]-x[2]; print (u+i>0) ? int(100*u/(u+i)) : 0}'
}
wait_quiet() { # returns the last busy % seen (waits up to QUIET_TIMEOUT s)
  local t0=$SECONDS p
  while :; do
    p=$(busy_pct 1)
    ((p <= QUIET_MAX_PCT || SECONDS - t0 >= QUIET_TIMEOUT)) && break
  done
  echo "$p"
}

URL="http://127.0.0.1:$PORT/ok"
echo "tool,mode,conns,rep,req_per_s,errors,busy_before_pct" >"$OUTDIR/runs.csv"
run_one() { # tool mode conns rep
  local tool=$1 mode=$2 c=$3 rep=$4 out rps err quiet
  out="$OUTDIR/raw/$tool-$mode-c$c-$rep.txt"
  quiet=$(wait_quiet)
  if [[ $tool == wrk ]]; then
    local hdr=(); [[ $mode == close ]] && hdr=(-H "Connection: close")
    timeout $((DURATION + 20)) taskset -c "$LOAD_CORE" wrk -t1 -c"$c" -d"${DURATION}s" "${hdr[@]}" "$URL" >"$out" 2>&1 || true
    rps=$(awk '/^Requests\/sec:/{print $2}' "$out")
    err=$(awk '/Non-2xx/{n+=$NF} /Socket errors/{gsub(/,/,""); n+=$4+$6+$8+$10} END{print n+0}' "$out")
  else
    local flags=(); [[ $mode == close ]] && flags=(--close)
    timeout $((DURATION + 20)) taskset -c "$LOAD_CORE" "$LOADTEST_BIN" --cores 1 -c "$c" -d "${DURATION}s" "${flags[@]}" --json "$URL" >"$out" 2>&1 || true
    rps=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["requests_per_sec"],1))' "$out" 2>/dev/null || true)
    err=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["errors_total"])' "$out" 2>/dev/null || true)
  fi
  echo "$tool,$mode,$c,$rep,${rps:-NA},${err:-NA},$quiet" >>"$OUTDIR/runs.csv"
  log "$tool $mode c=$c rep $rep: ${rps:-FAILED} req/s (errors ${err:-?}, machine ${quiet}% busy before)"
}

for c in $CONNS; do
  for mode in $MODES; do
    for rep in $(seq "$REPS"); do
      # Alternate which tool goes first, so drift affects both alike.
      if ((rep % 2)); then run_one wrk "$mode" "$c" "$rep"; run_one halb-loadtest "$mode" "$c" "$rep"
      else run_one halb-loadtest "$mode" "$c" "$rep"; run_one wrk "$mode" "$c" "$rep"; fi
    done
  done
done

# ------------------------------------------------------------------ summary
python3 - "$OUTDIR" <<'PY' >"$OUTDIR/summary.md"
import csv, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
rows = list(csv.DictReader(open(out / "runs.csv")))
env = (out / "env.txt").read_text()
print("# halb-loadtest vs wrk\n")
print("```\n" + env.strip() + "\n```\n")
print("GET /ok (3-byte body), one nginx worker; req/s as median [min..max] over the runs;")
print("ratio = median halb-loadtest / median wrk (>= 1: halb-loadtest is not the bottleneck);")
print("paired = median over the repetitions of (halb-loadtest / wrk) within the repetition")
print("(the two runs of a repetition are back to back, so the VM's drift cancels out).\n")
print("| mode | conns | wrk req/s | halb-loadtest req/s | ratio | paired [min..max] | errors (wrk / halb) |")
print("|---|---|---|---|---|---|---|")
keys = []
for r in rows:
    k = (r["mode"], r["conns"])
    if k not in keys:
        keys.append(k)
def vals(tool, k):
    return [float(r["req_per_s"]) for r in rows
            if (r["mode"], r["conns"]) == k and r["tool"] == tool and r["req_per_s"] != "NA"]
def errs(tool, k):
    return sum(int(r["errors"]) for r in rows
               if (r["mode"], r["conns"]) == k and r["tool"] == tool and r["errors"] not in ("NA", ""))
def fmt(v):
    return f"{statistics.median(v):,.0f} [{min(v):,.0f}..{max(v):,.0f}] (n={len(v)})" if v else "no data"
def paired(k):
    by_rep = {}
    for r in rows:
        if (r["mode"], r["conns"]) == k and r["req_per_s"] != "NA":
            by_rep.setdefault(r["rep"], {})[r["tool"]] = float(r["req_per_s"])
    p = [x["halb-loadtest"] / x["wrk"] for x in by_rep.values() if len(x) == 2 and x["wrk"] > 0]
    return f"{statistics.median(p):.2f} [{min(p):.2f}..{max(p):.2f}]" if p else "-"
for k in keys:
    w, h = vals("wrk", k), vals("halb-loadtest", k)
    ratio = f"{statistics.median(h) / statistics.median(w):.2f}" if w and h else "-"
    print(f"| {k[0]} | {k[1]} | {fmt(w)} | {fmt(h)} | {ratio} | {paired(k)} | {errs('wrk', k)} / {errs('halb-loadtest', k)} |")
noisy = [r for r in rows if int(r["busy_before_pct"] or 0) > 15]
print(f"\nRuns started on a machine busier than 15% (shared box): {len(noisy)} of {len(rows)}"
      " (busy_before_pct in runs.csv). Raw outputs: raw/.")
PY
cat "$OUTDIR/summary.md"
