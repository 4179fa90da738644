#!/usr/bin/env bash
# Experiment: halb built against glommio 0.9.0 with IORING_SETUP_COOP_TASKRUN on its rings,
# benchmarked with ../../run.sh (short connections, halb vs HAProxy in the same run).
#
# Stock glommio sets no ring setup flag, so every io_uring poll completion that arrives
# while the shard thread runs is announced with TWA_SIGNAL: an IPI to the shard's core and
# the signal path on its next return to user space. COOP_TASKRUN (kernel 5.19+) keeps
# running completions at the next kernel->user transition, without the IPI. halb waits
# through one-shot io_uring polls, so on short connections this is a large part of the
# per-connection cost (see README.md here).
#
# Nothing here changes the product build: the patched glommio and the halb built with it
# live in a temporary directory, removed at exit. Needs the glommio 0.9.0 sources in the
# cargo registry (any `cargo build` of halb fetches them), git, patch, and what ../../run.sh
# needs. Run as root from anywhere: bench-results/l4/experiments/glommio-coop-taskrun/run.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../../.." && pwd)
WORK=$(mktemp -d /tmp/halb-coop-exp.XXXXXX)
cleanup() {
    git -C "$REPO" worktree remove --force "$WORK/halb" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

GLOMMIO=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/glommio-0.9.0 2>/dev/null | head -n1)
[[ -n $GLOMMIO ]] || { echo "glommio 0.9.0 sources not in the cargo registry: run cargo build first" >&2; exit 1; }
cp -r "$GLOMMIO" "$WORK/glommio"
patch -d "$WORK/glommio" -p1 <"$HERE/glommio-0.9.0-coop-taskrun.patch"

git -C "$REPO" worktree add -q --detach "$WORK/halb" HEAD
printf '\n[patch.crates-io]\nglommio = { path = "%s" }\n' "$WORK/glommio" >>"$WORK/halb/Cargo.toml"
(cd "$WORK/halb" && CARGO_TARGET_DIR="$WORK/target" cargo build --release)

# Same harness, same pinning; stock halb and patched halb each against HAProxy in one run.
export SCENARIOS=${SCENARIOS:-short} REPEATS=${REPEATS:-3} SPLICE_CHECK=0 BUILD=never
OUTDIR="$HERE/results/$(date -u +%Y-%m-%d-%H%M)-stock" VARIANTS="haproxy-splice halb-splice" \
    "$REPO/bench-results/l4/run.sh"
OUTDIR="$HERE/results/$(date -u +%Y-%m-%d-%H%M)-coop" VARIANTS="haproxy-splice halb-splice" \
    HALB_BIN="$WORK/target/release/halb" "$REPO/bench-results/l4/run.sh"
