#!/usr/bin/env bash
# Run halb's whole test suite, installing what it needs first.
#
#   sudo tests/run-all.sh        # as a user with a rustup toolchain
#   tests/run-all.sh             # as root (CI runs it this way, through .ci/run)
#
# Steps: Debian packages (apt-get, only the missing ones), Rust toolchain check
# (cargo, clippy, rustfmt), resource limits (open files, locked memory), then
#   cargo fmt --all -- --check
#   cargo clippy --workspace --all-targets -- -D warnings
#   cargo build --release --workspace
#   cargo test --workspace --all-targets   (unit + integration tests: they drive the real
#                                           binaries, halb and loadtest/'s halb-loadtest)
#   cargo test --doc
# and a summary. Works from any directory. Exit status 0 only if every step passed.
#
# Run through sudo, the packages and limits are handled as root and the cargo steps run
# as the calling user (SUDO_USER) with their own toolchain, so target/ stays theirs.
#
# Environment: HALB_SKIP_INSTALL=1 skips the package step.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Packages the build and the tests use (all in Debian 12): a C compiler and libc headers
# (rustc links with cc; the `cc` crate builds C code), curl and CA certificates (crates.io
# and the README's demo), iproute2 (`ip`/`ss`/`bridge`, the network namespaces, veths and
# bridges of the VRRP tests), procps (`kill`, used by the tests to signal halb), util-linux
# (`taskset`, `setpriv`), chromium (tests/stats.rs renders the stats page in a real headless
# browser: --dump-dom and a screenshot; the test fails when /usr/bin/chromium is missing),
# keepalived (tests/vrrp_netns.rs validates its harness with Keepalived and checks that
# halb's VRRP interoperates with it; those tests fail when it is missing) and tcpdump (the
# same tests capture gratuitous ARPs and VRRP adverts on the test bridge), python3
# (tests/bench_scripts.rs runs the benchmark suite's record and summary steps), openssl
# (the TLS tests make their RSA keys with it: rcgen cannot with ring).
PACKAGES=(gcc libc6-dev ca-certificates curl iproute2 procps util-linux chromium keepalived tcpdump python3 openssl)

# Limits: descriptors for the 2,000-connection tests (the test process holds the client
# and backend sockets, halb its own two per connection), and locked memory for glommio's
# io_uring rings (512 KiB per shard, per halb process). WANT is what we raise to when
# allowed; below NEED a warning says so.
WANT_NOFILE=65536
NEED_NOFILE=8192
WANT_MEMLOCK_KIB=65536
NEED_MEMLOCK_KIB=2048

say() { printf '\n==> %s\n' "$*"; }
warn() { printf 'run-all: warning: %s\n' "$*" >&2; }
die() {
    printf 'run-all: error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------
# 1. Packages
# ---------------------------------------------------------------------------------------
install_packages() {
    if [[ ${HALB_SKIP_INSTALL:-0} == 1 ]]; then
        say "packages: skipped (HALB_SKIP_INSTALL=1)"
        return
    fi
    if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
        warn "not a Debian-like system (no apt-get): install the equivalents of ${PACKAGES[*]} yourself"
        return
    fi
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)); then
        say "packages: all present (${PACKAGES[*]})"
        return
    fi
    if ((EUID != 0)); then
        die "missing Debian packages: ${missing[*]}
    run this script as root (sudo tests/run-all.sh), or install them first:
    sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    fi
    say "packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}

# ---------------------------------------------------------------------------------------
# 2. Resource limits (raised for this script and everything it starts)
# ---------------------------------------------------------------------------------------
# raise_limit FLAG WANT NEED NAME: raise the hard limit when we may (root with
# CAP_SYS_RESOURCE), then the soft one as far as the hard limit allows; warn if the result
# is below NEED. Never lowers anything.
raise_limit() {
    local flag=$1 want=$2 need=$3 name=$4 hard soft
    hard=$(ulimit -H"$flag")
    if [[ $hard != unlimited ]] && ((hard < want)); then
        ulimit -H"$flag" "$want" 2>/dev/null || true
        hard=$(ulimit -H"$flag")
    fi
    soft=$(ulimit -S"$flag")
    if [[ $soft != unlimited ]] && ((soft < want)); then
        if [[ $hard == unlimited ]] || ((hard >= want)); then
            ulimit -S"$flag" "$want"
        else
            ulimit -S"$flag" "$hard"
        fi
    fi
    soft=$(ulimit -S"$flag")
    if [[ $soft != unlimited ]] && ((soft < need)); then
        warn "$name is $soft (hard limit $hard), below the $need the tests need, and cannot be raised from here; raise it (root, /etc/security/limits.conf, or the container's settings)"
    fi
}

set_limits() {
    raise_limit n "$WANT_NOFILE" "$NEED_NOFILE" "RLIMIT_NOFILE (ulimit -n)"
    raise_limit l "$WANT_MEMLOCK_KIB" "$NEED_MEMLOCK_KIB" "RLIMIT_MEMLOCK (ulimit -l, KiB)"
    say "limits: open files $(ulimit -Sn), locked memory $(ulimit -Sl) KiB"
    local disabled=/proc/sys/kernel/io_uring_disabled
    if [[ -r $disabled ]] && [[ $(cat "$disabled") != 0 ]]; then
        warn "io_uring is disabled by the kernel ($disabled = $(cat "$disabled")); halb (glommio) needs it: sysctl -w kernel.io_uring_disabled=0"
    fi
}

# ---------------------------------------------------------------------------------------
# 3. Under sudo: continue as the calling user (their rustup toolchain, their target/)
# ---------------------------------------------------------------------------------------
maybe_drop_to_sudo_user() {
    if ((EUID != 0)) || [[ -z ${SUDO_USER:-} || $SUDO_USER == root ]]; then
        return
    fi
    if [[ ${HALB_AS_SUDO_USER:-0} == 1 ]] || ! command -v setpriv >/dev/null; then
        return
    fi
    local home
    home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    [[ -n $home ]] || return
    say "continuing as $SUDO_USER (the cargo steps use their toolchain and keep target/ theirs)"
    # setpriv changes ids without PAM, so the limits raised above are kept.
    exec setpriv --reuid="$SUDO_UID" --regid="$SUDO_GID" --init-groups \
        env HOME="$home" USER="$SUDO_USER" LOGNAME="$SUDO_USER" \
        PATH="$home/.cargo/bin:$PATH" HALB_SKIP_INSTALL=1 HALB_AS_SUDO_USER=1 \
        bash "$ROOT/tests/run-all.sh" "$@"
}

# ---------------------------------------------------------------------------------------
# 4. Rust toolchain
# ---------------------------------------------------------------------------------------
check_toolchain() {
    if [[ -d ${CARGO_HOME:-$HOME/.cargo}/bin ]]; then
        PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null; then
        die "cargo not found. halb needs a Rust toolchain (stable, >= 1.80), installed with rustup:
    https://rustup.rs  (then open a new shell, or: source \$HOME/.cargo/env)"
    fi
    local comp missing=()
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    if ((${#missing[@]} > 0)) && command -v rustup >/dev/null; then
        say "toolchain: adding ${missing[*]} with rustup"
        for comp in "${missing[@]}"; do
            rustup component add "$comp" || true
        done
        missing=()
        cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
        cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    fi
    if ((${#missing[@]} > 0)); then
        die "the Rust toolchain lacks ${missing[*]}: rustup component add ${missing[*]}"
    fi
    say "toolchain: $(cargo --version), $(cargo clippy --version), $(cargo fmt --version)"
}

# ---------------------------------------------------------------------------------------
# 5. The steps
# ---------------------------------------------------------------------------------------
STEP_NAMES=()
STEP_RESULTS=()
FAILED=0
TEST_LOG=

# run_step NAME COMMAND...: run, time and record one step; later steps run even if one
# fails (except that the tests need a build), so one run shows every problem.
run_step() {
    local name=$1 start rc shown
    shift
    shown="$*"
    say "$name: ${shown/#cargo_test/cargo test}"
    start=$SECONDS
    set +e
    "$@"
    rc=$?
    set -e
    STEP_NAMES+=("$name")
    if ((rc == 0)); then
        STEP_RESULTS+=("ok      $((SECONDS - start))s")
    else
        STEP_RESULTS+=("FAILED  $((SECONDS - start))s (exit $rc)")
        FAILED=1
    fi
    return "$rc"
}

# cargo test, with its output also kept to count the tests at the end.
cargo_test() {
    cargo test "$@" 2>&1 | tee -a "$TEST_LOG"
    return "${PIPESTATUS[0]}"
}

main() {
    local began=$SECONDS
    echo "halb: full test suite in $ROOT"
    echo "host: $(uname -srm), $(nproc) CPU(s)${CI:+, CI=$CI}"
    install_packages
    set_limits
    maybe_drop_to_sudo_user "$@"
    check_toolchain
    TEST_LOG=$(mktemp -t halb-tests.XXXXXX)
    trap 'rm -f "$TEST_LOG"' EXIT

    run_step fmt cargo fmt --all -- --check || true
    run_step clippy cargo clippy --workspace --all-targets -- -D warnings || true
    run_step build-release cargo build --release --workspace || true
    if run_step test cargo_test --workspace --all-targets; then :; fi
    if [[ -f src/lib.rs ]]; then
        run_step doctest cargo_test --doc || true
    fi

    # Tests counted from cargo's "test result:" lines (unit, integration and doc tests).
    local passed failed ignored
    read -r passed failed ignored < <(awk '
        /^test result:/ {
            for (i = 1; i <= NF; i++) {
                if ($(i+1) ~ /^passed;?$/)  p += $i
                if ($(i+1) ~ /^failed;?$/)  f += $i
                if ($(i+1) ~ /^ignored;?$/) g += $i
            }
        }
        END { print p + 0, f + 0, g + 0 }' "$TEST_LOG")

    printf '\n==================== halb test summary ====================\n'
    local i
    for i in "${!STEP_NAMES[@]}"; do
        printf '  %-14s %s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}"
    done
    printf '  total time     %ss\n' "$((SECONDS - began))"
    if ((FAILED)); then
        printf '  RESULT: FAILED (see the step marked FAILED above)\n'
    else
        printf '  RESULT: all steps passed\n'
    fi
    printf '===========================================================\n'
    printf 'tests: %d passed, %d failed, %d skipped\n' "$passed" "$failed" "$ignored"
    if ((!FAILED && passed == 0)); then
        echo "run-all: error: no test ran" >&2
        return 1
    fi
    return "$FAILED"
}

main "$@"
