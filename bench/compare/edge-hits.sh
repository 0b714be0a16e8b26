#!/usr/bin/env bash
# Cache-hit serving, side by side in one run: `strata edge` vs Varnish vs nginx (proxy_cache, and plain static
# files as the ceiling), all in front of the same nginx origin on 127.0.0.1, measured with wrk.
#
# For each server and object size: requests/s, MiB/s and the server's CPU seconds per 1,000 requests
# (utime + stime of the server processes from /proc, before and after), which is the figure that carries to
# other machines when client and server share the cores as they do here.
#
# Needs: nginx, varnishd, wrk (apt-get install -y nginx varnish wrk) and target/release/strata.
# Usage: bash bench/compare/edge-hits.sh [DURATION_SECONDS (default 10)] [CONNECTIONS (default 64)]
set -euo pipefail

DURATION="${1:-10}"
CONNS="${2:-64}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STRATA="${STRATA_BIN:-$ROOT/target/release/strata}"
if ! command -v nginx >/dev/null || ! command -v varnishd >/dev/null || ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx varnish wrk >/dev/null
    else
        echo "needs nginx, varnishd and wrk: sudo apt-get install -y nginx varnish wrk" >&2; exit 1
    fi
fi
[ -x "$STRATA" ] || { echo "no $STRATA: cargo build --release" >&2; exit 1; }

WORK="$(mktemp -d /tmp/strata-edge-hits.XXXXXX)"
chmod 755 "$WORK" # nginx's workers run as an unprivileged user and must read the site
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$WORK/nginx-origin.pid" ] && kill "$(cat "$WORK/nginx-origin.pid")" 2>/dev/null || true
    [ -f "$WORK/nginx-cache.pid" ] && kill "$(cat "$WORK/nginx-cache.pid")" 2>/dev/null || true
    pkill -f "varnishd.*$WORK" 2>/dev/null || true
    sleep 0.5
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ORIGIN_PORT=$(free_port); NGINX_CACHE_PORT=$(free_port); VARNISH_PORT=$(free_port)
EDGE_PORT=$(free_port); EDGE_TLS=$(free_port); EDGE_ADMIN=$(free_port)

mkdir -p "$WORK/site" "$WORK/nginx-cache" "$WORK/edge-state"
SIZES=(${SIZES:-1k 1m})
head -c 1024 /dev/urandom >"$WORK/site/1k.bin"
head -c 65536 /dev/urandom >"$WORK/site/64k.bin"
head -c 1048576 /dev/urandom >"$WORK/site/1m.bin"

# nginx configuration shared by the origin and the proxy cache: one worker per core, as packaged.
nginx_conf() { # nginx_conf NAME SERVER_BLOCK
    cat >"$WORK/$1.conf" <<EOF
worker_processes auto;
pid $WORK/$1.pid;
error_log $WORK/$1.error.log;
daemon on;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    proxy_cache_path $WORK/nginx-cache levels=1:2 keys_zone=hits:10m max_size=1g inactive=1h use_temp_path=off;
    $2
}
EOF
}
nginx_conf nginx-origin "server { listen 127.0.0.1:$ORIGIN_PORT; root $WORK/site; location / { add_header Cache-Control \"max-age=3600\"; } }"
nginx_conf nginx-cache "server { listen 127.0.0.1:$NGINX_CACHE_PORT; location / { proxy_pass http://127.0.0.1:$ORIGIN_PORT; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_cache hits; proxy_cache_valid 200 1h; proxy_cache_lock on; add_header X-Cache \$upstream_cache_status; } }"
nginx -c "$WORK/nginx-origin.conf" -p "$WORK"
nginx -c "$WORK/nginx-cache.conf" -p "$WORK"

varnishd -a "127.0.0.1:$VARNISH_PORT" -b "127.0.0.1:$ORIGIN_PORT" -s malloc,512m -n "$WORK/varnish" \
    -P "$WORK/varnish.pid" >/dev/null

cat >"$WORK/edge.toml" <<EOF
listen = "127.0.0.1:$EDGE_PORT"
tls_listen = "127.0.0.1:$EDGE_TLS"
admin_listen = "127.0.0.1:$EDGE_ADMIN"
[cache]
memory_bytes = 536870912
[[distribution]]
id = "bench"
hostnames = ["*"]
[distribution.origin]
type = "http"
url = "http://127.0.0.1:$ORIGIN_PORT"
EOF
RUST_LOG=warn "$STRATA" edge --config "$WORK/edge.toml" --state-dir "$WORK/edge-state" >"$WORK/edge.out" 2>"$WORK/edge.err" &
PIDS+=($!)
EDGE_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$EDGE_ADMIN/health" >/dev/null 2>&1 && break; sleep 0.1; done

pids_of() { # pids_of NAME: the server processes whose CPU is counted
    case "$1" in
        strata-edge) echo "$EDGE_PID" ;;
        varnish) pgrep -f "varnishd.*$WORK" | tr '\n' ' ' ;;
        nginx-cache) pgrep -f "nginx.*$WORK/nginx-cache.conf" | tr '\n' ' '; pgrep -P "$(cat "$WORK/nginx-cache.pid")" | tr '\n' ' ' ;;
        nginx-static) pgrep -f "nginx.*$WORK/nginx-origin.conf" | tr '\n' ' '; pgrep -P "$(cat "$WORK/nginx-origin.pid")" | tr '\n' ' ' ;;
    esac
}
cpu_ticks() { # cpu_ticks PID...: utime + stime summed, in clock ticks
    local total=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$total"
}
url_of() {
    case "$1" in
        strata-edge) echo "http://127.0.0.1:$EDGE_PORT" ;;
        varnish) echo "http://127.0.0.1:$VARNISH_PORT" ;;
        nginx-cache) echo "http://127.0.0.1:$NGINX_CACHE_PORT" ;;
        nginx-static) echo "http://127.0.0.1:$ORIGIN_PORT" ;;
    esac
}

TICKS=$(getconf CLK_TCK)
SERVERS=(${SERVERS:-strata-edge varnish nginx-cache nginx-static})
printf '%-13s %-5s %12s %10s %9s %9s %16s\n' server size "requests/s" "MiB/s" "p50" "p99" "CPU-s/1k req"
for size in "${SIZES[@]}"; do
    for server in "${SERVERS[@]}"; do
        url="$(url_of "$server")/$size.bin"
        # Warm the cache and check the object is a hit where the server says so.
        for _ in 1 2 3; do
            curl -fsS -o /dev/null "$url" || { echo "$server does not serve $url" >&2; tail -n 5 "$WORK"/*.err* >&2; exit 1; }
        done
        # shellcheck disable=SC2046
        before=$(cpu_ticks $(pids_of "$server"))
        out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$url")
        # shellcheck disable=SC2046
        after=$(cpu_ticks $(pids_of "$server"))
        reqs=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
        total=$(awk '/requests in/ {print $1}' <<<"$out")
        mib=$(python3 -c "s={'1k':1024,'64k':65536,'1m':1048576}['$size']; print(f'{$reqs*s/1048576:.1f}')")
        cpu=$(python3 -c "print(f'{($after-$before)/$TICKS/max($total,1)*1000:.3f}')")
        p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
        p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
        printf '%-13s %-5s %12s %10s %9s %9s %16s\n' "$server" "$size" "$reqs" "$mib" "$p50" "$p99" "$cpu"
    done
done
