# shellcheck shell=bash
# shellcheck disable=SC2034  # PROXY_PID / PROXY_CMD are read by the caller
# TLS pieces of the TLS benchmark, on top of the suite's proxies (../../suite/lib/proxies.sh,
# sourced first): certificates made at run time, and each proxy started with the suite's
# own l7 configuration plus a TLS listener, pinned and started exactly as the suite does.
#
# tls_make_certs DIR NAME          -> DIR/{ca,leaf}-{ecdsa,rsa}.pem, DIR/ca-all.pem
#   A self-signed CA per key type (ECDSA P-256, RSA 2048) and a leaf for NAME with SANs
#   DNS:NAME and IP:127.0.0.1. leaf-*.pem is the leaf certificate then its unencrypted
#   PKCS#8 key: the form both HAProxy's `crt` and halb's `certs` take. The keys stay in
#   DIR (a temporary directory): they are never written to the results.
# tls_haproxy_config TLS_LISTEN BACKEND CERT RUNDIR CORE
#   The suite's l7 HAProxy configuration whose `bind` carries `ssl crt CERT alpn http/1.1`.
# tls_halb_config TLS_LISTEN PLAIN_LISTEN BACKEND CERT RUNDIR
#   The suite's l7 halb configuration (listening on PLAIN_LISTEN) whose frontend gains
#   `tls = { bind = [TLS_LISTEN], certs = [CERT] }`.
#   Neither sets ciphers, versions, caches or tickets: both run their defaults (see README).
# tls_proxy_start PROXY TLS_LISTEN PLAIN_LISTEN BACKEND CERT RUNDIR CORE -> PROXY_PID, PROXY_CMD
#   The suite's suite_proxy_start (taskset, haproxy -db, HALB_LOG=warn) with tls_proxy_config
#   as its configuration. Readiness: the suite's suite_proxy_ready PROXY RUNDIR TLS_PORT PID.
# tls_negotiated HOST:PORT SNI CAFILE VERSION -> "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519 ECDSA+SHA256 alpn=http/1.1"
#   What the proxy picks when offered halb-loadtest's preferences (rustls 0.23 defaults, the
#   same with ring or aws-lc-rs: suites AES-256-GCM, AES-128-GCM, ChaCha20-Poly1305; groups
#   X25519, P-256, P-384, then X25519MLKEM768 with aws-lc-rs, which s_client cannot offer),
#   asked with `openssl s_client` (halb-loadtest's JSON gives the version only).

TLS_RUSTLS_TLS13="TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"
TLS_RUSTLS_TLS12="ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305"
TLS_RUSTLS_GROUPS="X25519:P-256:P-384"

tls_make_certs() {
  local dir=$1 name=$2 kind
  mkdir -p "$dir"
  (
    umask 077
    cd "$dir" || exit 1
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectAltName=DNS:$name,IP:127.0.0.1" >leaf.ext
    printf '%s\n' "basicConstraints=critical,CA:TRUE" "keyUsage=critical,keyCertSign,cRLSign" \
      "subjectKeyIdentifier=hash" >ca.ext
    for kind in ecdsa rsa; do
      local -a newkey
      if [[ $kind == ecdsa ]]; then newkey=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256)
      else newkey=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048); fi
      openssl genpkey "${newkey[@]}" -out "ca-$kind.key" 2>/dev/null &&
        openssl req -new -key "ca-$kind.key" -subj "/CN=halb bench CA ($kind)" -out "ca-$kind.csr" &&
        openssl x509 -req -in "ca-$kind.csr" -signkey "ca-$kind.key" -sha256 -days 30 \
          -extfile ca.ext -out "ca-$kind.pem" 2>/dev/null &&
        openssl genpkey "${newkey[@]}" -out "leaf-$kind.key" 2>/dev/null &&
        openssl req -new -key "leaf-$kind.key" -subj "/CN=$name" -out "leaf-$kind.csr" &&
        openssl x509 -req -in "leaf-$kind.csr" -CA "ca-$kind.pem" -CAkey "ca-$kind.key" -sha256 -days 30 \
          -set_serial "0x$(openssl rand -hex 8)" -extfile leaf.ext -out "leaf-$kind.crt" 2>/dev/null &&
        openssl verify -CAfile "ca-$kind.pem" "leaf-$kind.crt" >/dev/null &&
        cat "leaf-$kind.crt" "leaf-$kind.key" >"leaf-$kind.pem" || exit 1
    done
    cat ca-ecdsa.pem ca-rsa.pem >ca-all.pem
  )
}

tls_haproxy_config() { # TLS_LISTEN BACKEND CERT RUNDIR CORE
  suite_haproxy_config l7 "$1 ssl crt $3 alpn http/1.1" "$2" "$4" "$5"
}

tls_halb_config() { # TLS_LISTEN PLAIN_LISTEN BACKEND CERT RUNDIR
  local line="tls = { bind = [\"$1\"], certs = [\"$4\"] }"
  suite_halb_config l7 "$2" "$3" "$5" | awk -v l="$line" '{print} /^\[frontend\.fe\]$/ {print l}'
}

# tls_proxy_config TLS_LISTEN CERT PROXY LAYER PLAIN_LISTEN BACKEND RUNDIR CORE : the
#   suite_proxy_start hook (LAYER is l7)
tls_proxy_config() {
  case $3 in
    haproxy) tls_haproxy_config "$1" "$6" "$2" "$7" "$8" ;;
    halb) tls_halb_config "$1" "$5" "$6" "$2" "$7" ;;
  esac
}

tls_proxy_start() { # PROXY TLS_LISTEN PLAIN_LISTEN BACKEND CERT RUNDIR CORE
  suite_proxy_start "$1" l7 "$3" "$4" "$6" "$7" tls_proxy_config "$2" "$5"
}

tls_negotiated() { # HOST:PORT SNI CAFILE VERSION(1.2|1.3)
  local -a offer
  if [[ $4 == 1.2 ]]; then offer=(-tls1_2 -cipher "$TLS_RUSTLS_TLS12")
  else offer=(-tls1_3 -ciphersuites "$TLS_RUSTLS_TLS13"); fi
  timeout 10 openssl s_client -connect "$1" -servername "$2" -CAfile "$3" -verify_return_error \
    -alpn http/1.1 -groups "$TLS_RUSTLS_GROUPS" "${offer[@]}" </dev/null 2>&1 |
    awk '/^ *Verify return code:/ {v=$4}
         /^(New|Reused), / {p=$2; sub(",", "", p); c=$NF}
         /^Server Temp Key:/ {k=$4; sub(",", "", k)}
         /^Peer signature type:/ {s=$4}
         /^Peer signing digest:/ {d=$4}
         /^ALPN protocol:/ {a=$3}
         END {if (p == "" || v != "0") {print "handshake failed"; exit 1}
              printf "%s %s %s %s+%s alpn=%s\n", p, c, k, s, d, a}'
}
