# Sourced by the bench/compare scripts that start `strata serve` themselves (io-backends.sh,
# multipart-vs-single.sh): a work directory removed on exit with the server, a free port, and a fresh server
# per start. Set STRATA (the binary) and WORK_NAME before sourcing; provides WORK, and SERVER and ENDPOINT
# while a server runs.

WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-$WORK_NAME.XXXXXX")"
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=benchbenchbenchbench AWS_SECRET_ACCESS_KEY=benchbenchbenchbenchbenchbenchbenchbench

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start [BACKEND]: a fresh server with empty data, with `storage.io = BACKEND` when given; its log is
# $WORK/server.log, or $WORK/server-BACKEND.log. Sets SERVER and ENDPOINT.
start() {
    rm -rf "$WORK/data"
    local port log="$WORK/server${1:+-$1}.log" cfg=()
    if [ -n "${1:-}" ]; then
        printf '[storage]\nio = "%s"\n' "$1" >"$WORK/strata.toml"
        cfg=(--config "$WORK/strata.toml")
    fi
    port=$(free_port)
    STRATA_ACCESS_KEY=$AWS_ACCESS_KEY_ID STRATA_SECRET_KEY=$AWS_SECRET_ACCESS_KEY RUST_LOG=warn \
        "$STRATA" serve "${cfg[@]}" --data "$WORK/data" --s3-addr "127.0.0.1:$port" \
        --edge-addr 127.0.0.1:0 --edge-tls-addr 127.0.0.1:0 --edge-admin-addr 127.0.0.1:0 \
        --website-addr 127.0.0.1:0 >"$log" 2>&1 &
    SERVER=$!
    ENDPOINT="http://127.0.0.1:$port"
    for _ in $(seq 100); do curl -s -o /dev/null "$ENDPOINT/" && return 0; sleep 0.1; done
    echo "server did not start" >&2; tail "$log" >&2; exit 1
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""; }
